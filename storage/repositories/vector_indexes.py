"""The deferred HNSW indexes of the vector spaces (see ``vectors.py`` for why).

Every index is created and dropped ``CONCURRENTLY`` (reads and writes of every tenant go
on) by whoever holds its advisory lock, on a connection of its own that is closed (or
terminated, on any failure or cancellation) afterwards, so neither the lock nor the
build's settings ever outlive it or reach the pool. A load's drop and a build never
overlap, two processes never build the same index, and a build's leftover after a failure
(an invalid index) is dropped and built again by a later sweep, after a back-off; one
failing space never holds up the others.

When to build: once a space has ``INDEX_MIN_VECTORS`` vectors and its writes paused for
``QUIET_SECONDS`` (``vector_spaces.written_at``, stamped by every write at its end), or
after ``FORCE_AFTER_SECONDS`` without an index whatever its writes do. Indexes of the
earlier form (no dimension in their name) keep serving until their successor is valid.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tenancy import tenant_scope

log = logging.getLogger(__name__)

#: below this many vectors an exact scan is as quick as the index: no index is built
INDEX_MIN_VECTORS = 1_000
#: a rewrite (a training's vectors) of at least this many vectors may drop the index ...
BULK_VECTORS = 1_000
#: ... when it covers at least this share of the space: inserting into the index costs
#: several times more per vector than building it (docs/benchmarks.md, "Writes")
REBUILD_SHARE = 0.25
#: a space is built once its vectors went unchanged this long (a load between batches) ...
QUIET_SECONDS = 5.0
#: ... or once it went this long without an index, however steadily it is written
FORCE_AFTER_SECONDS = 120.0
#: seconds between sweeps in the trainer
SWEEP_SECONDS = 10.0
#: a failed build or drop of an index is retried after this, doubling up to an hour
RETRY_SECONDS = 30.0
#: memory for one build: the graph is built much faster when it fits
BUILD_MEMORY = "512MB"
#: PostgreSQL's helpers for one build: none, so a build in the background takes one core
#: and leaves the others to serving (50k × 64 on this machine: 10.4 s alone, 6.1 s with 2)
BUILD_WORKERS = 0
#: the advisory locks of the indexes, apart from every other lock of the service
LOCK_NAMESPACE = 0x56494458  # "VIDX"
_NEVER = object()


def sql_literal(value: str) -> str:
    """A SQL string literal (for index predicates, which cannot take parameters)."""
    return "'" + value.replace("'", "''") + "'"


INDEX_PREFIX = "ix_item_vectors_hnsw_"


def index_name(tenant: str, space: str, dim: int) -> str:
    digest = hashlib.sha256(f"{tenant}/{space}/{dim}".encode()).hexdigest()[:24]
    return f"{INDEX_PREFIX}{digest}"


def space_predicate(tenant: str, space: str, dim: int, table: str = "") -> str:
    """The partial index's predicate; queries repeat it literally so the planner uses it.
    It names the dimension, so rows of another dimension are never cast to this one."""
    at = f"{table}." if table else ""
    return (
        f"{at}tenant_id = {sql_literal(tenant)} AND {at}space = {sql_literal(space)} "
        f"AND vector_dims({at}embedding) = {int(dim)}"
    )


def create_index(tenant: str, space: str, dim: int) -> str:
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {index_name(tenant, space, dim)} "
        f"ON item_vectors USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
        f"WHERE {space_predicate(tenant, space, dim)}"
    )


INDEXES = text(
    "SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid "
    "WHERE i.indrelid = 'item_vectors'::regclass AND c.relname LIKE :prefix"
)
SPACES = text(
    "SELECT tenant_id, name, dim, written_at, "
    "coalesce(written_at <= clock_timestamp() - make_interval(secs => :q), true) AS rest "
    "FROM vector_spaces ORDER BY tenant_id, name"
)
#: how many vectors the space has, counted up to ``:n`` (bounded: a walk of the btree,
#: never reading the vectors)
COUNT = text(
    "SELECT count(*) FROM (SELECT 1 FROM item_vectors "
    "WHERE tenant_id = :t AND space = :s LIMIT :n) AS bounded"
)
#: another build or a manual ANALYZE or VACUUM holds the table: a drop would wait for all
#: of it (autovacuum would give way)
TABLE_BUSY = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.relation = 'item_vectors'::regclass AND l.mode = 'ShareUpdateExclusiveLock' "
    "AND l.granted AND a.backend_type <> 'autovacuum worker')"
)
#: a space's writes, stamped (at most once a second, never waiting for another writer's
#: stamp) after each chunk of a write, and before a rewrite, in transactions of their own
STAMP_WRITE = text(
    "UPDATE vector_spaces SET written_at = clock_timestamp() WHERE (tenant_id, name) = "
    "(SELECT tenant_id, name FROM vector_spaces WHERE tenant_id = :t AND name = :s "
    "AND (written_at IS NULL OR written_at < clock_timestamp() - interval '1 second') "
    "FOR UPDATE SKIP LOCKED)"
)
#: a steadily written space is built after FORCE_AFTER_SECONDS unless it grew by more than
#: this share meanwhile (then it is being loaded, and the wait starts again)
LOADING_GROWTH = 0.1


def legacy_index_name(tenant: str, space: str) -> str:
    """The name of a space's index of the earlier form (before migration 0013)."""
    digest = hashlib.sha256(f"{tenant}/{space}".encode()).hexdigest()[:24]
    return f"{INDEX_PREFIX}{digest}"


@dataclass(frozen=True)
class IndexState:
    valid: bool


class IndexKeeper:
    def __init__(self, engine: AsyncEngine, url: str) -> None:
        self.engine = engine
        self.url = url  # libpq form, for the connections of the DDL
        #: unindexed spaces large enough for an index: since when, and their size then
        self._waiting: dict[str, tuple[float, int]] = {}
        #: spaces too small for an index, by the stamp of their last write then
        self._small: dict[str, object] = {}
        self._failures: dict[str, int] = {}
        self._retry_at: dict[str, float] = {}

    async def stamp(self, tenant: str, space: str) -> None:
        """Note a write to the space now (its index waits until writes pause)."""
        async with self.engine.begin() as conn:
            await conn.execute(STAMP_WRITE, {"t": tenant, "s": space})

    async def state(self, name: str) -> IndexState | None:
        """The index called ``name`` (None: there is none)."""
        return (await self._indexes(name)).get(name)

    async def _indexes(self, name: str | None = None) -> dict[str, IndexState]:
        pattern = name if name is not None else INDEX_PREFIX + "%"
        with tenant_scope(None):
            async with self.engine.connect() as conn:
                rows = (await conn.execute(INDEXES, {"prefix": pattern})).all()
        return {r.name: IndexState(bool(r.valid)) for r in rows}

    async def _count(self, tenant: str, space: str, up_to: int) -> int:
        with tenant_scope(None):
            async with self.engine.connect() as conn:
                got = await conn.execute(COUNT, {"t": tenant, "s": space, "n": up_to})
                return int(got.scalar_one())

    @asynccontextmanager
    async def _locked(self, name: str) -> AsyncIterator[asyncpg.Connection | None]:
        """A connection of its own holding ``name``'s advisory lock (None: held
        elsewhere); it ends with the block, and so do the lock and its settings."""
        conn = await asyncpg.connect(
            self.url,
            server_settings={
                "application_name": "recograph-indexes",
                "statement_timeout": "0",
                "lock_timeout": "0",
                "maintenance_work_mem": BUILD_MEMORY,
                "max_parallel_maintenance_workers": str(BUILD_WORKERS),
                # a build whose caller went away (cancelled, terminated) stops within
                # a second instead of running on with the lock
                "client_connection_check_interval": "500ms",
            },
        )
        try:
            got = await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", LOCK_NAMESPACE, name
            )
            yield conn if got else None
            await conn.close(timeout=5)
        except BaseException:
            conn.terminate()  # the session ends at once, releasing the lock
            raise

    async def make_room(self, tenant: str, space: str, dim: int, count: int) -> bool:
        """Before a rewrite of ``count`` vectors (a training's): drop the space's index
        when building it again costs less than inserting them into it (whether it was
        dropped). Never waits for a build elsewhere: then the vectors go into the index."""
        if count < BULK_VECTORS:
            return False
        name = index_name(tenant, space, dim)
        found = await self.state(name)
        if found is None or not found.valid:
            return False
        most = int(count / REBUILD_SHARE)
        if await self._count(tenant, space, most + 1) > most:
            return False
        async with self._locked(name) as conn:
            if conn is None or await conn.fetchval(TABLE_BUSY):
                return False
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        log.info("dropped vector index %s for a rewrite of %d vectors", name, count)
        return True

    async def sweep(self, quiet: float = QUIET_SECONDS, tenant: str | None = None) -> list[str]:
        """Drop the indexes no space needs (of a former dimension, a failed build's
        leftover, an earlier form whose successor is valid) and build the missing ones of
        spaces at rest; the names built. With ``tenant``, only build that tenant's."""
        existing = await self._indexes()  # before the spaces: an index built after
        with tenant_scope(None):  # this read is never taken for an unwanted one
            async with self.engine.connect() as conn:
                spaces = (await conn.execute(SPACES, {"q": quiet})).all()
        wanted = {index_name(r.tenant_id, r.name, r.dim): r for r in spaces}
        succeeded_by = {legacy_index_name(r.tenant_id, r.name): n for n, r in wanted.items()}
        now = time.monotonic()
        if tenant is None:
            for name, state in existing.items():
                if (name in wanted and state.valid) or self._retry_at.get(name, 0.0) > now:
                    continue
                successor = existing.get(succeeded_by.get(name, ""))
                if name in succeeded_by and state.valid and not (successor and successor.valid):
                    continue  # the earlier form serves until its successor is built
                await self._attempt(name, self._drop(name, wanted, succeeded_by.get(name)))
        built = []
        for name, row in wanted.items():
            found = existing.get(name)
            if found is not None and found.valid:
                self._waiting.pop(name, None)
                continue
            if tenant is not None and row.tenant_id != tenant:
                continue
            if self._retry_at.get(name, 0.0) > now or not await self._due(name, row, now):
                continue
            if await self._attempt(name, self._build(name, row.tenant_id, row.name, row.dim)):
                self._waiting.pop(name, None)
                built.append(name)
        return built

    async def _due(self, name: str, row: Any, now: float) -> bool:
        """Whether an unindexed space should be built now: large enough, and at rest or
        written only a trickle for ``FORCE_AFTER_SECONDS``."""
        if self._small.get(name, _NEVER) == row.written_at:  # unchanged since counted
            return False
        count = await self._count(row.tenant_id, row.name, 2**62)
        if count < INDEX_MIN_VECTORS:
            self._small[name] = row.written_at
            self._waiting.pop(name, None)
            return False
        self._small.pop(name, None)
        since, then = self._waiting.setdefault(name, (now, count))
        if count > then * (1 + LOADING_GROWTH):  # a load: wait for it to pause
            self._waiting[name] = (now, count)
            return bool(row.rest)
        return bool(row.rest) or now - since >= FORCE_AFTER_SECONDS

    async def _attempt(self, name: str, work: Awaitable[bool | None]) -> bool:
        """Run one index's drop or build; a failure is logged and retried later."""
        try:
            done = bool(await work)
        except Exception:
            failures = self._failures.get(name, 0) + 1
            self._failures[name] = failures
            pause = min(RETRY_SECONDS * 2 ** (failures - 1), 3600.0)
            self._retry_at[name] = time.monotonic() + pause
            log.exception("vector index %s failed (%d times); retrying in %.0f s", name,
                          failures, pause)  # fmt: skip
            return False
        self._failures.pop(name, None)
        self._retry_at.pop(name, None)
        return done

    async def _drop(self, name: str, wanted: Mapping[str, Any], successor: str | None) -> bool:
        async with self._locked(name) as conn:
            if conn is None:  # being built elsewhere (a build in progress is invalid too)
                return False
            # read again under the lock: another process may have finished a build of it
            # (or dropped the successor of an index of the earlier form) meanwhile
            found = await self.state(name)
            if found is None or (name in wanted and found.valid):
                return False
            if successor is not None and found.valid:
                built = await self.state(successor)
                if built is None or not built.valid:
                    return False
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        log.info("dropped vector index %s (no longer wanted, or a failed build)", name)
        return True

    async def drop_legacy(self, tenant: str, space: str) -> None:
        """Drop the space's index of the earlier form, whose predicate does not name the
        dimension (before vectors of a new dimension are written, which it would cast)."""
        name = legacy_index_name(tenant, space)
        if await self.state(name) is None:
            return
        async with self._locked(name) as conn:
            if conn is not None:
                await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                return
        raise RuntimeError(f"the index {name} is being changed: try again")

    async def _build(self, name: str, tenant: str, space: str, dim: int) -> bool:
        async with self._locked(name) as conn:
            if conn is None:
                return False
            found = await self.state(name)
            if found is not None and found.valid:  # built meanwhile
                return False
            if found is not None:
                await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            started = time.perf_counter()
            await conn.execute(create_index(tenant, space, dim))
            # the planner's statistics may predate the load: with them it would still
            # sort a space of thousands it takes for a few rows instead of using the index
            await conn.execute("ANALYZE item_vectors")
        log.info("built vector index %s (%s/%s, %d dimensions) in %.1f s", name, tenant, space,
                 dim, time.perf_counter() - started)  # fmt: skip
        return True
