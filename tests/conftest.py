"""Shared fixtures: one real PostgreSQL+pgvector (embedded unless DATABASE_URL is set) and a
real Redis (REDIS_URL, default db 15) for the whole run; tables are truncated between tests."""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from browser_support import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS
from sqlalchemy import event, text

from gql.server.app import create_app
from gql.server.database import limits_of
from gql.server.settings import Settings
from storage.embedded import EmbeddedPostgres
from storage.store import Store

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
RESET_SQL = (
    "TRUNCATE items, users, interactions, item_vectors, vector_spaces, model_artifacts, "
    "api_keys, interaction_types, training_jobs, webhooks, webhook_deliveries, "
    "scenarios, experiments, experiment_exposures RESTART IDENTITY CASCADE",
    "DELETE FROM tenants WHERE id <> 'default'",
)


def _sigterm_as_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt("SIGTERM")


# A CI timeout sends SIGTERM: turn it into an interrupt so fixtures stop the embedded server.
signal.signal(signal.SIGTERM, _sigterm_as_interrupt)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    if os.environ.get("DATABASE_URL"):
        yield os.environ["DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="recograph-test-") as tmp:
        pg = EmbeddedPostgres(Path(tmp))
        try:
            yield pg.start()
        finally:
            pg.stop()


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, redis_url=REDIS_URL, max_batch_size=20_000,
                    train_interval_seconds=0, train_on_start=False, train_on_growth=0,
                    require_api_key=False,
                    rate_limit_per_key=0, rate_limit_per_tenant=0)


@pytest.fixture(scope="session")
async def session_store(settings: Settings) -> AsyncIterator[Store]:
    store = await Store.open(
        settings.database_url or "", settings.redis_url, limits=limits_of(settings),
        result_cache_seconds=settings.recommendation_cache_seconds,
    )
    try:
        yield store
    finally:
        await store.close()


async def reset(store: Store) -> None:
    async with store.engine.begin() as conn:
        for sql in RESET_SQL:
            await conn.execute(text(sql))
        indexes = await conn.execute(
            text("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_item_vectors_hnsw_%'")
        )
        for (name,) in indexes.all():
            await conn.execute(text(f'DROP INDEX "{name}"'))
    store.vectors._dims.clear()
    store.snapshots.forget()  # in-process copies of what was just truncated
    store.results.forget()
    store.interaction_types._cached.clear()
    store.webhooks.forget()
    store.placements.forget()
    store.placements._exposures.clear()
    store.impressions._local.clear()
    await store.interaction_types.seed_defaults("default")
    redis = getattr(store.cache, "_redis", None)
    if redis is not None:
        await redis.flushdb()


@pytest.fixture
async def store(session_store: Store) -> AsyncIterator[Store]:
    await reset(session_store)
    yield session_store


@pytest.fixture
async def client(store: Store, settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings, store=store)
    async with TestClient(TestServer(app)) as c:
        yield c


class GraphQL:
    def __init__(self, client: TestClient[Any, Any]) -> None:
        self.client = client

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, expect_errors: bool = False
    ) -> dict[str, Any]:
        resp = await self.client.post("/graphql", json={"query": query, "variables": variables})
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        if not expect_errors:
            assert "errors" not in body, body["errors"]
        return body if expect_errors else body["data"]


@pytest.fixture
def gql(client: TestClient[Any, Any]) -> GraphQL:
    return GraphQL(client)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.statements.append(statement)

    def hot(self, statement: str) -> None:
        """A read of ``store.hot`` (asyncpg, not through SQLAlchemy) or of the online
        histories in Redis: counted as a data query."""
        self.statements.append("SELECT /* read */ " + statement)

    @property
    def selects(self) -> list[str]:
        """Data queries (not the per-transaction row-level-security settings)."""
        return [s for s in self.statements if s.lstrip().upper().startswith("SELECT")
                and "set_config('role'" not in s]


@pytest.fixture
def sql_counter(store: Store) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    event.listen(store.engine.sync_engine, "before_cursor_execute", counter)
    store.hot.observers.append(counter.hot)
    store.online.observers.append(counter.hot)
    try:
        yield counter
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", counter)
        store.hot.observers.remove(counter.hot)
        store.online.observers.remove(counter.hot)


@pytest.fixture
async def keys(store: Store) -> dict[str, str]:
    """A key of every scope for two tenants, ``"acme:read"`` -> secret."""
    out = {}
    for tenant in ("acme", "globex"):
        await store.ensure_tenant(tenant)
        for scope in ("admin", "write", "read", "recommend"):
            _, out[f"{tenant}:{scope}"] = await store.api_keys.create(tenant, scope, [scope])
    return out


@pytest.fixture
async def secured(store: Store, settings: Settings) -> AsyncIterator[TestClient[Any, Any]]:
    """A server that requires API keys."""
    app = create_app(settings.model_copy(update={"require_api_key": True}), store=store)
    async with TestClient(TestServer(app)) as client:
        yield client


class Caller:
    def __init__(self, client: TestClient[Any, Any], key: str | None,
                 headers: dict[str, str] | None = None) -> None:
        self.client, self.key = client, key
        self.headers = dict(headers or {})

    async def raw(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        headers = dict(self.headers)
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return await self.client.post("/graphql", json={"query": query, "variables": variables},
                                      headers=headers)

    async def __call__(self, query: str, variables: dict[str, Any] | None = None, *,
                       expect_errors: bool = False) -> dict[str, Any]:
        resp = await self.raw(query, variables)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        if not expect_errors:
            assert "errors" not in body, body["errors"]
            return body["data"]  # type: ignore[no-any-return]
        return body


class Socket:
    """A graphql-transport-ws client."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, client: TestClient[Any, Any], payload: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> Socket:
        ws = await client.ws_connect("/graphql", protocols=["graphql-transport-ws"],
                                     headers=headers or {})
        await ws.send_json({"type": "connection_init", **({"payload": payload} if payload
                                                          is not None else {})})
        return cls(ws)

    async def message(self, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next protocol message (pings skipped); a close as {"type": "closed"}."""
        from aiohttp import WSMsgType

        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == WSMsgType.TEXT:
                data: dict[str, Any] = json.loads(msg.data)
                if data.get("type") == "ping":
                    await self.ws.send_json({"type": "pong"})
                    continue
                return data
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                return {"type": "closed", "code": self.ws.close_code, "reason": msg.extra}
            raise AssertionError(f"unexpected message {msg}")

    async def result(self, op_id: str, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
        """The next `next` or `error` of operation ``op_id`` (other messages skipped)."""
        while True:
            msg = await self.message(timeout)
            if msg["type"] == "closed":
                return msg
            if msg.get("id") == op_id and msg["type"] in ("next", "error"):
                return msg

    async def acked(self) -> Socket:
        msg = await self.message()
        assert msg["type"] == "connection_ack", msg
        return self

    async def subscribe(self, op_id: str, query: str,
                        variables: dict[str, Any] | None = None) -> None:
        await self.ws.send_json({"id": op_id, "type": "subscribe",
                                 "payload": {"query": query, "variables": variables or {}}})

    async def close(self) -> None:
        await self.ws.close()


async def eventually(check: Any, within: float = 5.0) -> None:
    """Wait until ``check()`` (sync or async) is true; fail after ``within`` seconds. A
    condition to wait for, not a sleep that hopes the server got there."""
    import asyncio
    import inspect
    import time

    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)


def subscribers(store: Store, channel: str) -> int:
    """Subscribers of ``channel`` in this process (sockets and the event followers)."""
    return len(store.cache.fanout.channels.get(channel, ()))


async def until_subscribed(store: Store, channel: str, count: int = 1) -> None:
    """Until ``count`` subscribers of ``channel`` listen in this process, and (with Redis)
    the process's pub/sub connection has subscribed to it."""
    cache = store.cache

    async def ready() -> bool:
        if len(cache.fanout.channels.get(channel, ())) < count:
            return False
        redis = getattr(cache, "_redis", None)
        if redis is None:
            return True
        name = cache.prefix + channel  # type: ignore[attr-defined]
        numsub = await redis.pubsub_numsub(name)
        return bool(numsub and numsub[0][1] > 0)

    await eventually(ready)


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a `recograph serve` process on the test database and Redis:
    no training of its own, no rate limits, keys optional."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env |= {"RECOGRAPH_DATABASE_URL": database_url, "RECOGRAPH_REDIS_URL": REDIS_URL,
            "RECOGRAPH_REQUIRE_API_KEY": "false", "RECOGRAPH_TRAIN_ON_START": "false",
            "RECOGRAPH_TRAIN_ON_GROWTH": "0", "RECOGRAPH_TRAIN_INTERVAL_SECONDS": "0",
            "RECOGRAPH_RATE_LIMIT_PER_KEY": "0", "RECOGRAPH_RATE_LIMIT_PER_TENANT": "0",
            "RECOGRAPH_LOG_LEVEL": "WARNING", "OPENBLAS_NUM_THREADS": "1", **extra}
    return env


def start_server(port: int, env: dict[str, str]) -> Any:
    """Another API process (`recograph serve --workers 0`) on ``port``."""
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "gql.cli", "serve", "--workers", "0", "--host", "127.0.0.1",
         "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)


async def until_ready(port: int, proc: Any, within: float = 60) -> None:
    """Until the server process on ``port`` answers /ready (fails at once if it exited)."""
    import aiohttp

    async def up() -> bool:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else "server exited"
        try:
            async with aiohttp.ClientSession() as s, s.get(
                    f"http://127.0.0.1:{port}/ready", timeout=aiohttp.ClientTimeout(total=1)
            ) as resp:
                return resp.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    await eventually(up, within=within)


def stop_server(proc: Any) -> None:
    import signal
    import subprocess

    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
