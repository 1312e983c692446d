"""The aiohttp application: routes (``/graphql``, health, metrics, GraphiQL assets, the
dashboard), the error middleware, start-up and shutdown."""

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

from aiohttp import ClientConnectionResetError, WSCloseCode, web

from gql.server import dashboard
from gql.server import graphiql as graphiql_assets
from gql.server.auth import Authenticator, RateLimited, Unauthorized
from gql.server.cors import CORS, Cors, OriginRefused, parse_origins
from gql.server.database import open_store
from gql.server.heap import keep_pauses_short
from gql.server.observability import Metrics, metrics_handler, request_middleware
from gql.server.runtime import running
from gql.server.settings import Settings
from gql.server.state import (
    AUTH,
    DRAINING,
    ENGINE,
    METRICS,
    SETTINGS,
    SOCKETS,
    STORE,
    WEBSOCKET,
)
from gql.server.view import (
    CLOSE_FORBIDDEN,
    STATIC_PREFIX,
    BadRequestBody,
    RecographView,
    RequestTimeout,
    authenticate_request,
)
from storage.backends import SlowConsumer
from storage.repositories.api_keys import KEYS_CHANNEL
from storage.store import Store
from storage.tasks import stop_task

log = logging.getLogger(__name__)
#: nginx's status for a request whose client closed the connection before the answer
CLIENT_CLOSED_REQUEST = 499


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
            # the key is checked before the body is read: an anonymous sender cannot make
            # the server take in 64 MiB
            await authenticate_request(request)
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
    except OriginRefused as exc:
        return _error(403, str(exc), "FORBIDDEN_ORIGIN")
    except Unauthorized as exc:
        response = _error(401, str(exc), "UNAUTHENTICATED")
        response.headers["WWW-Authenticate"] = 'Bearer realm="recograph"'
        return response
    except web.HTTPException:
        raise
    except (ConnectionResetError, ClientConnectionResetError):
        # the client went away: nothing to answer, nothing wrong with the server
        log.info("client disconnected during %s %s", request.method, request.path)
        return web.Response(status=CLIENT_CLOSED_REQUEST)
    except Exception as exc:
        socket = request.get(WEBSOCKET)
        if isinstance(socket, web.WebSocketResponse) and socket.prepared:
            # the socket's handshake is answered: a response cannot be written over it
            log.error("unhandled %s on a WebSocket at %s", type(exc).__name__, request.path)
            log.debug("traceback", exc_info=True)
            with contextlib.suppress(Exception):
                await socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
            return socket
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.path)
        log.debug("traceback", exc_info=True)
        return _error(500, "internal server error", "INTERNAL_SERVER_ERROR")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


#: how long /ready waits for the start-up warm-up before saying "warming"
WARM_WAIT_SECONDS = 2.0


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
    body: dict[str, object] = {"checks": checks, "modelsLoaded": models}
    if runtime is not None and runtime.warming is not None and not runtime.warm:
        with contextlib.suppress(TimeoutError):  # a small tenant is loaded in a moment
            await asyncio.wait_for(asyncio.shield(runtime.warming), WARM_WAIT_SECONDS)
    if runtime is not None and not runtime.warm:  # models still loading: send traffic elsewhere
        status = 503
        body["warming"] = True
    return web.json_response({"ready": status == 200, **body}, status=status)


async def close_sockets(app: web.Application, code: int, reason: bytes, key_id: int | None) -> int:
    """Close open subscriptions: all, or those logged in with ``key_id``."""
    closed = 0
    for ws, context in list(app[SOCKETS].items()):
        if key_id is None or context.auth.key_id == key_id:
            with contextlib.suppress(Exception):
                await ws.close(code=code, message=reason)
            closed += 1
    return closed


async def close_refused_origins(app: web.Application, key_id: int) -> None:
    """A key's origins changed: close its sockets opened from pages no longer allowed."""
    for ws, context in list(app[SOCKETS].items()):
        if context.auth.key_id != key_id or context.request is None:
            continue
        try:
            auth = await app[AUTH].authenticate(context.credentials)
        except (Unauthorized, RateLimited):
            continue  # the next operation on the socket finds out
        if app[CORS].refusal(context.request, auth.origins) is not None:
            with contextlib.suppress(Exception):
                await ws.close(code=CLOSE_FORBIDDEN, message=b"origin no longer allowed")


async def follow_revocations(app: web.Application) -> None:
    """Every replica forgets a revoked or changed key at once, and closes the sockets of a
    revoked one. If messages were lost (pub/sub was away), every cached key is forgotten."""
    while True:
        try:
            async for raw in app[STORE].cache.subscribe(KEYS_CHANNEL):
                await _key_message(app, raw)
        except SlowConsumer:
            app[AUTH].forget()
            app[CORS].forget()


async def _key_message(app: web.Application, raw: bytes) -> None:
    try:
        message = json.loads(raw)
        revoked, changed = message.get("revoked"), message.get("changed")
    except (ValueError, AttributeError):
        return
    app[CORS].forget()
    if isinstance(changed, int):
        app[AUTH].forget(changed)
        await close_refused_origins(app, changed)
    if isinstance(revoked, int):
        app[AUTH].forget(revoked)
        await close_sockets(app, CLOSE_FORBIDDEN, b"API key revoked", revoked)


def create_app(settings: Settings, store: Store | None = None) -> web.Application:
    """Build the app. With ``store`` given (tests) the caller owns it; otherwise the app opens
    one at start-up from ``settings.database_url`` and closes it at clean-up."""
    if not settings.keys_required() and not settings.embedded:
        log.warning(
            "RECOGRAPH_REQUIRE_API_KEY=false on a shared database: every caller "
            "acts as the default tenant with all scopes"
        )
    metrics = Metrics()
    cors = Cors(parse_origins(settings.cors_origins))
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[request_middleware(metrics), cors.middleware(), error_middleware],
        # a connection that has not sent a whole request (headers included) by then, or
        # that sits idle between requests that long, is closed
        handler_args={"keepalive_timeout": settings.request_read_timeout_seconds},
    )
    app[METRICS] = metrics
    app[DRAINING] = {"since": None}
    app[SOCKETS] = weakref.WeakKeyDictionary()
    app[SETTINGS] = settings
    app[CORS] = cors

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
        cors.store = opened
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
                runtime.service.batcher.on_batch = lambda name, size: (
                    metrics.score_batch_size.labels(name).observe(size)
                )
                runtime.service.on_cache = lambda result: metrics.cache.labels(
                    "candidates", result
                ).inc()
                runtime.service.on_answer = lambda result: metrics.cache.labels(
                    "recommendations", result
                ).inc()
                app[ENGINE] = runtime
                if store is None:  # a server of its own (tests share their process)
                    keep_pauses_short(runtime.service)
                yield
        finally:
            await stop_task(revocations)
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
    dashboard.add_routes(app)
    assets = graphiql_assets.assets_dir()
    if assets.is_dir():
        app.router.add_static(STATIC_PREFIX, assets)
    else:
        log.warning("GraphiQL assets missing in %s: run `python -m gql.server.graphiql`", assets)
    return app
