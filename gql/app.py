"""The aiohttp application: ``/graphql`` (HTTP, graphql-transport-ws, GraphiQL), health checks."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gql import graphiql_assets
from gql.auth import KeyCache, Unauthorized, authenticate
from gql.context import Context
from gql.engine_runtime import EngineRuntime, running
from gql.runtime import open_store
from gql.schema import build_schema
from gql.settings import Settings
from storage.store import Store

log = logging.getLogger(__name__)

STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", EngineRuntime)
KEYS = web.AppKey("keys", KeyCache)
SETTINGS = web.AppKey("settings", Settings)
STATIC_PREFIX = "/graphiql-static"


class BadRequestBody(Exception):
    pass


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def is_ide_page(request: web.Request) -> bool:
    return (
        request.method == "GET"
        and "text/html" in request.headers.get("Accept", "")
        and "query" not in request.query
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
        runtime = request.app[ENGINE]
        if is_ide_page(request):  # the GraphiQL page runs nothing; its requests carry keys
            return Context.build(
                request.app[STORE],
                runtime.service,
                runtime.trainer,
                self.settings,
                request,
                response,
            )
        auth = await authenticate(
            request.headers.get("Authorization"),
            request.app[STORE],
            request.app[KEYS],
            self.settings.keys_required(),
        )
        runtime.follow(auth.tenant)
        return Context.build(
            request.app[STORE],
            runtime.service,
            runtime.trainer,
            self.settings,
            request,
            response,
            auth,
        )

    def decode_json(self, data: str | bytes) -> object:
        """Strict JSON (RFC 8259): UTF-8 only, and no NaN/Infinity, which are not numbers
        in JSON and must not reach weights or attributes."""
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
            return json.loads(text, parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadRequestBody(f"request body is not valid JSON: {exc}") from exc

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
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return _error(413, f"request body larger than {limit} bytes", "PAYLOAD_TOO_LARGE")
    except BadRequestBody as exc:
        return _error(400, str(exc), "BAD_REQUEST")
    except Unauthorized as exc:
        response = _error(401, str(exc), "UNAUTHENTICATED")
        response.headers["WWW-Authenticate"] = 'Bearer realm="recograph"'
        return response
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
    app[KEYS] = KeyCache()

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = store if store is not None else await open_store(settings)
        app[STORE] = opened
        try:
            async with running(opened, settings) as runtime:
                app[ENGINE] = runtime
                yield
        finally:
            if store is None:
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
