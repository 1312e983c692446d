"""The aiohttp application: ``/graphql`` (HTTP, graphql-transport-ws, GraphiQL), health checks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import SubscribeMessage

from gql.context import Context
from gql.schema import build_schema
from gql.server import graphiql as graphiql_assets
from gql.server.auth import ANONYMOUS, Authenticator, RateLimited, Unauthorized
from gql.server.database import open_store
from gql.server.observability import Metrics, metrics_handler, request_middleware
from gql.server.runtime import EngineRuntime, running
from gql.server.settings import Settings
from storage.repositories.api_keys import KEYS_CHANNEL
from storage.store import Store

log = logging.getLogger(__name__)

STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", EngineRuntime)
AUTH = web.AppKey("auth", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
DRAINING = web.AppKey("draining", dict)
SOCKETS = web.AppKey("sockets", weakref.WeakKeyDictionary)
SETTINGS = web.AppKey("settings", Settings)
STATIC_PREFIX = "/graphiql-static"
USER_TOKEN_HEADER = "X-User-Token"

#: WebSocket close code of a socket whose key was refused (graphql-transport-ws's 4403)
CLOSE_FORBIDDEN = 4403


class BadRequestBody(Exception):
    """A body or message that is not the JSON object GraphQL over HTTP expects."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message


class RequestTimeout(Exception):
    pass


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def decode_strict_json(data: str | bytes) -> object:
    """Strict JSON (RFC 8259): UTF-8 only, no NaN/Infinity (not numbers in JSON), and an
    object (or a list, for batches) at the top."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadRequestBody("request body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequestBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict | list):
        raise BadRequestBody("request body must be a JSON object")
    return value


class AuthorisedTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws where every operation is authorised like an HTTP request: the
    key is verified again (a revoked key stops working on an open socket) and the rate
    limits are charged per operation; a key may hold a bounded number of operations."""

    view: RecographView

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged:
            await super().handle_subscribe(message)  # closes with 4401
            return
        context = self.context
        try:
            await self.view.reauthorise(context)
        except Unauthorized as exc:
            await self.websocket.close(CLOSE_FORBIDDEN, str(exc)[:120])
            return
        except RateLimited as exc:
            await self._refuse(message, str(exc), "RATE_LIMITED", exc.retry_after)
            return
        key = context.auth.key_id
        limit = self.view.settings.max_subscriptions_per_key
        if key is not None and self.view.in_flight[key] >= limit:
            await self._refuse(message, f"this key has {limit} open operations", "TOO_MANY")
            return
        await super().handle_subscribe(message)
        operation = self.operations.get(message["id"])
        if key is not None and operation is not None and operation.task is not None:
            self.view.in_flight[key] += 1
            operation.task.add_done_callback(lambda _: self.view.release(key))

    async def _refuse(
        self, message: SubscribeMessage, text: str, code: str, retry: float | None = None
    ) -> None:
        extensions: dict[str, Any] = {"code": code}
        if retry is not None:
            extensions["retryAfter"] = math.ceil(retry)
        await self.send_message(
            {
                "id": message["id"],
                "type": "error",
                "payload": [{"message": text, "extensions": extensions}],
            }
        )


class RecographView(GraphQLView):  # type: ignore[type-arg]
    graphql_transport_ws_handler_class = AuthorisedTransportWS

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        super().__init__(
            schema=build_schema(settings, metrics),
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.settings = settings
        self.in_flight: Counter[int] = Counter()

    def release(self, key_id: int) -> None:
        self.in_flight[key_id] -= 1
        if self.in_flight[key_id] <= 0:
            del self.in_flight[key_id]

    def _context(self, request: web.Request, response: Any, **fields: Any) -> Context:
        runtime = request.app[ENGINE]
        return Context.build(
            request.app[STORE],
            runtime.service,
            runtime.trainer,
            self.settings,
            request,
            response,
            **fields,
        )

    async def get_context(self, request: web.Request, response: Any) -> Context:  # type: ignore[override]
        if self.is_websocket_request(request):
            # a socket is anonymous until its connection_init authenticates it
            headers = request.headers
            return self._context(
                request,
                response,
                auth=ANONYMOUS,
                credentials=headers.get("Authorization"),
                user_token=headers.get(USER_TOKEN_HEADER),
            )
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return self._context(request, response, auth=ANONYMOUS)  # the page runs nothing
        auth = await request.app[AUTH].authenticate(
            request.headers.get("Authorization"),
            request.headers.get(USER_TOKEN_HEADER),
            request.remote,
        )
        s = self.settings
        await request.app[AUTH].charge(
            auth, s.rate_limit_per_key, s.rate_limit_per_tenant, s.rate_limit_burst_seconds
        )
        request.app[ENGINE].follow(auth.tenant)
        return self._context(request, response, auth=auth)

    async def on_ws_connect(self, context: Context) -> None:  # type: ignore[override]
        """Log the socket in: the key comes from the connection_init payload (browsers
        cannot set headers on a WebSocket) or the handshake's Authorization header."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        credentials = _credentials(params) or context.credentials
        user_token = params.get("userToken") or context.user_token
        request = context.request
        assert request is not None
        try:
            auth = await request.app[AUTH].authenticate(
                credentials, user_token if isinstance(user_token, str) else None, request.remote
            )
        except (Unauthorized, RateLimited) as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from None
        context.login(auth, credentials, user_token if isinstance(user_token, str) else None)
        request.app[SOCKETS][context.response] = context
        request.app[ENGINE].follow(auth.tenant)

    async def reauthorise(self, context: Context) -> None:
        """Per operation on a socket: the key again, and the rate limits."""
        request = context.request
        assert request is not None
        auth = await request.app[AUTH].authenticate(
            context.credentials, context.user_token, request.remote
        )
        if (auth.tenant, auth.key_id) != (context.auth.tenant, context.auth.key_id):
            raise Unauthorized("the key of this socket changed")
        s = self.settings
        await request.app[AUTH].charge(
            auth, s.rate_limit_per_key, s.rate_limit_per_tenant, s.rate_limit_burst_seconds
        )

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket message (a bad one closes the socket with 4400)."""
        try:
            return decode_strict_json(data)
        except BadRequestBody as exc:
            raise json.JSONDecodeError(exc.reason, "", 0) from None

    def parse_json(self, data: str | bytes) -> Any:
        """An HTTP body or query parameter (a bad one is a 400 naming the reason)."""
        return decode_strict_json(data)

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        html = graphiql_assets.render_graphiql_html(
            graphql_path="/graphql", static_prefix=STATIC_PREFIX
        )
        return web.Response(text=html, content_type="text/html")


def _credentials(params: dict[str, Any]) -> str | None:
    for name in ("Authorization", "authorization"):
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    key = params.get("apiKey")
    return f"Bearer {key}" if isinstance(key, str) and key else None


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
        if request.method == "POST" and request.path == "/graphql":
            # a slow sender is cut off instead of holding a connection forever
            timeout = request.app[SETTINGS].request_read_timeout_seconds
            try:
                await asyncio.wait_for(request.read(), timeout)
            except TimeoutError:
                raise RequestTimeout(f"request body not received within {timeout:g}s") from None
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].max_body_bytes
        return _error(413, f"request body larger than {limit} bytes", "PAYLOAD_TOO_LARGE")
    except BadRequestBody as exc:
        return _error(400, exc.reason, "BAD_REQUEST")
    except RequestTimeout as exc:
        response = _error(408, str(exc), "REQUEST_TIMEOUT")
        response.force_close()
        return response
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
    except Exception as exc:
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        log.debug("traceback", exc_info=True)
        return _error(500, "internal server error", "INTERNAL_SERVER_ERROR")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def ready(request: web.Request) -> web.Response:
    """Readiness without tenant data: what is up, and how many models are loaded."""
    if request.app[DRAINING]["since"] is not None:
        return web.json_response({"ready": False, "draining": True}, status=503)
    store = request.app[STORE]
    checks = {"database": await store.database_ok(), "cache": await store.cache.ping()}
    status = 200 if checks["database"] else 503
    # models are reported, not required: a new installation must accept data before any
    # model can be trained
    runtime = request.app.get(ENGINE)
    models = sum(len(m) for m in runtime.service.loaded().values()) if runtime else 0
    return web.json_response(
        {"ready": status == 200, "checks": checks, "modelsLoaded": models}, status=status
    )


async def close_sockets(app: web.Application, code: int, reason: bytes, key_id: int | None) -> int:
    """Close open subscriptions: all, or those logged in with ``key_id``."""
    closed = 0
    for ws, context in list(app[SOCKETS].items()):
        if key_id is None or context.auth.key_id == key_id:
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=reason)
            closed += 1
    return closed


async def follow_revocations(app: web.Application) -> None:
    """Every replica forgets a revoked key at once and closes its sockets."""
    async for raw in app[STORE].cache.subscribe(KEYS_CHANNEL):
        try:
            key_id = json.loads(raw)["revoked"]
        except (ValueError, KeyError, TypeError):
            continue
        app[AUTH].forget(key_id)
        await close_sockets(app, CLOSE_FORBIDDEN, b"API key revoked", key_id)


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
        # a connection that has not sent a whole request (headers included) by then, or
        # that sits idle between requests that long, is closed
        handler_args={"keepalive_timeout": settings.request_read_timeout_seconds},
    )
    app[METRICS] = metrics
    app[DRAINING] = {"since": None}
    app[SOCKETS] = weakref.WeakKeyDictionary()
    app[SETTINGS] = settings

    async def start_draining(app: web.Application) -> None:
        # SIGTERM: aiohttp stops accepting, lets in-flight requests finish
        # (shutdown_timeout), then runs clean-up, which stops the engine and the store.
        # Subscriptions never finish by themselves: close them with "going away".
        app[DRAINING]["since"] = time.time()
        await close_sockets(app, WSCloseCode.GOING_AWAY, b"server shutting down", None)

    app.on_shutdown.append(start_draining)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = store if store is not None else await open_store(settings)
        app[STORE] = opened
        app[AUTH] = Authenticator(
            opened,
            required=settings.keys_required(),
            lookups_per_address=settings.auth_lookups_per_address,
        )
        revocations = asyncio.create_task(follow_revocations(app), name="key-revocations")
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
            revocations.cancel()
            with contextlib.suppress(BaseException):
                await revocations
            if store is None:
                await opened.close()

    app.cleanup_ctx.append(store_ctx)
    app.router.add_route("*", "/graphql", RecographView(settings, metrics))

    def refresh() -> None:
        runtime = app.get(ENGINE)
        if runtime is None:
            return
        metrics.background_tasks.set(sum(not t.done() for t in runtime.tasks))
        loaded: Counter[str] = Counter()
        for models in runtime.service.loaded().values():
            loaded.update(models.keys())
        for name, count in loaded.items():
            metrics.models_loaded.labels(name).set(count)

    app.router.add_get("/metrics", metrics_handler(metrics, refresh, settings.metrics_token))
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    assets = graphiql_assets.assets_dir()
    if assets.is_dir():
        app.router.add_static(STATIC_PREFIX, assets)
    else:
        log.warning("GraphiQL assets missing in %s: run `python -m gql.server.graphiql`", assets)
    return app
