"""The aiohttp application: ``/graphql`` (HTTP, graphql-transport-ws, GraphiQL), health checks."""

from __future__ import annotations

import json
import logging
import math
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web
from strawberry.aiohttp.views import GraphQLView
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from gql import graphiql_assets
from gql.auth import (
    KeyCache,
    RateLimited,
    Unauthorized,
    authenticate,
    enforce_rate_limits,
)
from gql.context import Context
from gql.engine_runtime import EngineRuntime, running
from gql.observability import Metrics, metrics_handler, request_middleware
from gql.runtime import open_store
from gql.schema import build_schema
from gql.settings import Settings
from storage.store import Store

log = logging.getLogger(__name__)

STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", EngineRuntime)
KEYS = web.AppKey("keys", KeyCache)
METRICS = web.AppKey("metrics", Metrics)
DRAINING = web.AppKey("draining", dict)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
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
    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        super().__init__(
            schema=build_schema(settings, metrics),
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
        s = self.settings
        await enforce_rate_limits(
            request.app[STORE],
            auth,
            s.rate_limit_per_key,
            s.rate_limit_per_tenant,
            s.rate_limit_burst_seconds,
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

    async def create_websocket_response(
        self, request: web.Request, subprotocol: str | None
    ) -> web.WebSocketResponse:
        ws = await super().create_websocket_response(request, subprotocol)
        request.app[SOCKETS].add(ws)  # closed on shutdown, so subscriptions end cleanly
        return ws

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
    except RateLimited as exc:
        response = _error(429, str(exc), "RATE_LIMITED")
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return response
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
    if request.app[DRAINING]["since"] is not None:
        return web.json_response({"ready": False, "draining": True}, status=503)
    store = request.app[STORE]
    checks = {"database": await store.database_ok(), "cache": await store.cache.ping()}
    status = 200 if checks["database"] else 503
    # models are reported, not required: a new installation must accept data before any
    # model can be trained
    runtime = request.app.get(ENGINE)
    loaded = {t: sorted(m) for t, m in runtime.service.loaded().items()} if runtime else {}
    return web.json_response(
        {"ready": status == 200, "checks": checks, "models": loaded}, status=status
    )


def create_app(settings: Settings, store: Store | None = None) -> web.Application:
    """Build the app. With ``store`` given (tests) the caller owns it; otherwise the app opens
    one at start-up from ``settings.database_url`` and closes it at clean-up."""
    if not settings.keys_required() and not settings.embedded:
        log.warning(
            "RECOGRAPH_REQUIRE_API_KEY=false on a shared database: every caller "
            "acts as the default tenant with all scopes"
        )
    metrics = Metrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_middleware(metrics), error_middleware],
    )
    app[METRICS] = metrics
    app[DRAINING] = {"since": None}
    app[SOCKETS] = weakref.WeakSet()

    async def start_draining(app: web.Application) -> None:
        # SIGTERM: aiohttp stops accepting, lets in-flight requests finish
        # (shutdown_timeout), then runs clean-up, which stops the engine and the store.
        # Subscriptions never finish by themselves: close them with "going away".
        app[DRAINING]["since"] = time.time()
        for ws in list(app[SOCKETS]):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    app.on_shutdown.append(start_draining)
    app[SETTINGS] = settings
    app[KEYS] = KeyCache()

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = store if store is not None else await open_store(settings)
        app[STORE] = opened
        try:
            async with running(opened, settings) as runtime:
                runtime.service.observe = lambda name, seconds: metrics.algorithm_seconds.labels(
                    name
                ).observe(seconds)
                runtime.service.on_cache = lambda result: metrics.cache.labels(
                    "candidates", result
                ).inc()
                app[ENGINE] = runtime
                yield
        finally:
            if store is None:
                await opened.close()

    app.cleanup_ctx.append(store_ctx)
    app.router.add_route("*", "/graphql", RecographView(settings, metrics))

    def refresh() -> None:
        runtime = app.get(ENGINE)
        if runtime is None:
            return
        metrics.background_tasks.set(sum(not t.done() for t in runtime.tasks))
        for tenant, models in runtime.service.loaded().items():
            for name, model in models.items():
                metrics.model_version.labels(tenant, name).set(model.version)

    app.router.add_get("/metrics", metrics_handler(metrics, refresh))
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    assets = graphiql_assets.assets_dir()
    if assets.is_dir():
        app.router.add_static(STATIC_PREFIX, assets)
    else:
        log.warning("GraphiQL assets missing in %s: run `python -m gql.graphiql_assets`", assets)
    return app
