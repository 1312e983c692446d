"""The aiohttp application: ``/graphql`` (HTTP, graphql-transport-ws, GraphiQL), health checks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gql import graphiql_assets
from gql.context import Context
from gql.schema import build_schema
from gql.settings import Settings
from storage.store import Store
from storage.validation import Limits

log = logging.getLogger(__name__)

STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)
STATIC_PREFIX = "/graphiql-static"


def limits_of(settings: Settings) -> Limits:
    from datetime import timedelta

    return Limits(
        max_id_length=settings.max_id_length,
        max_text_length=settings.max_text_length,
        max_attributes_bytes=settings.max_attributes_bytes,
        max_batch_size=settings.max_batch_size,
        future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
    )


async def open_store(settings: Settings) -> Store:
    if not settings.database_url:
        raise RuntimeError("no database URL: start the embedded server first (see gql.cli)")
    return await Store.open(
        settings.database_url,
        settings.redis_url,
        limits=limits_of(settings),
        auto_create_items=settings.auto_create_items,
        migrate=settings.run_migrations,
    )


class RecographView(GraphQLView):  # type: ignore[type-arg]
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            schema=build_schema(settings),
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.settings = settings

    async def get_context(self, request: web.Request, response: Any) -> Context:  # type: ignore[override]
        return Context.build(request.app[STORE], self.settings, request, response)

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        html = graphiql_assets.render_graphiql_html(
            graphql_path="/graphql", static_prefix=STATIC_PREFIX
        )
        return web.Response(text=html, content_type="text/html")


def _error(status: int, message: str, code: str) -> web.Response:
    return web.json_response(
        {"data": None, "errors": [{"message": message, "extensions": {"code": code}}]},
        status=status,
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn HTTP-level failures into GraphQL-shaped JSON; never send a traceback."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        return _error(413, f"request body larger than {exc.max_size} bytes", "PAYLOAD_TOO_LARGE")
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error(500, "internal server error", "INTERNAL_SERVER_ERROR")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    store = request.app[STORE]
    checks = {"database": await store.database_ok(), "cache": await store.cache.ping()}
    status = 200 if checks["database"] else 503
    return web.json_response({"ready": status == 200, "checks": checks}, status=status)


def create_app(settings: Settings, store: Store | None = None) -> web.Application:
    """Build the app. With ``store`` given (tests) the caller owns it; otherwise the app opens
    one at start-up from ``settings.database_url`` and closes it at clean-up."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[error_middleware])
    app[SETTINGS] = settings

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        if store is not None:
            app[STORE] = store
            yield
            return
        opened = await open_store(settings)
        app[STORE] = opened
        try:
            yield
        finally:
            await opened.close()

    app.cleanup_ctx.append(store_ctx)
    app.router.add_route("*", "/graphql", RecographView(settings))
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    assets = graphiql_assets.assets_dir()
    if assets.is_dir():
        app.router.add_static(STATIC_PREFIX, assets)
    else:
        log.warning("GraphiQL assets missing in %s: run `python -m gql.graphiql_assets`", assets)
    return app
