"""Item embeddings in pgvector: named spaces per tenant, each with its own dimension and
its own partial HNSW index.

Every vector inserted into an HNSW index is a graph search inside PostgreSQL, which made
bulk loads ten times slower than the same rows without vectors. A write of
``BULK_VECTORS`` or more vectors therefore drops the space's index first and builds it
once, ``REBUILD_AFTER_SECONDS`` after the space's last bulk write (searches meanwhile scan
the space exactly: slower, never wrong). A process stopped before its rebuild leaves the
index to ``ensure_indexes``, which every API process runs at start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import ColumnElement, Select, cast, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.sql import any_of
from storage.tables import ITEM_VECTORS, ITEMS, VECTOR_SPACES
from storage.tenancy import tenant_scope

log = logging.getLogger(__name__)

T = ITEM_VECTORS
SPACES = VECTOR_SPACES
SPACE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
MAX_DIM = 2000  # pgvector's HNSW limit for the ``vector`` type
#: a write of at least this many vectors defers the space's index ...
BULK_VECTORS = 1000
#: ... until the space's bulk writes have paused this long
REBUILD_AFTER_SECONDS = 2.0


class DimensionMismatch(ValueError):
    pass


def sql_literal(value: str) -> str:
    """A SQL string literal (for index predicates, which cannot take parameters)."""
    return "'" + value.replace("'", "''") + "'"


def index_name(tenant: str, space: str) -> str:
    digest = hashlib.sha256(f"{tenant}/{space}".encode()).hexdigest()[:24]
    return f"ix_item_vectors_hnsw_{digest}"


def space_predicate(tenant: str, space: str, table: str = "") -> str:
    """The partial index's predicate; queries repeat it literally so the planner uses it."""
    at = f"{table}." if table else ""
    return f"{at}tenant_id = {sql_literal(tenant)} AND {at}space = {sql_literal(space)}"


#: vectors bound as text: pgvector's own bind formats every float in Python, twice as slow
#: as one format call per row (a profile of bulk item loads: 10% of the API worker)
UPSERT_VECTORS = text(
    "INSERT INTO item_vectors (tenant_id, item_id, space, embedding) "
    "VALUES (:t, :i, :s, CAST(:e AS vector)) "
    "ON CONFLICT (item_id, space) DO UPDATE SET embedding = excluded.embedding, "
    "updated_at = now()"
)


def vector_texts(vectors: np.ndarray) -> list[str]:
    """pgvector's text form of each row, with the 9 significant digits that give float32
    values back exactly."""
    rows = np.asarray(vectors, np.float32).tolist()
    return ["[" + ",".join(map("{:.9g}".format, row)) + "]" for row in rows]


def create_index(tenant: str, space: str, dim: int) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS {index_name(tenant, space)} ON item_vectors "
        f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
        f"WHERE {space_predicate(tenant, space)}"
    )


def nearest_query(
    tenant: str,
    space: str,
    vector: np.ndarray,
    limit: int,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    """``item_id`` and cosine distance ``d`` of the ``limit`` items nearest to ``vector``
    among those meeting ``conditions`` on the items table, nearest first, through the
    tenant's HNSW index for ``space`` (the query repeats the index's predicate)."""
    distance = cast(T.c.embedding, VECTOR(int(vector.shape[0]))).cosine_distance(
        vector.astype(np.float32)
    )
    return (
        select(T.c.item_id, distance.label("d"))
        .join(ITEMS, ITEMS.c.id == T.c.item_id)
        .where(text(space_predicate(tenant, space, "item_vectors")), *conditions)
        .order_by(text("d"))
        .limit(limit)
    )


class VectorRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dims: dict[tuple[str, str], int] = {}
        #: spaces whose index this process dropped for a bulk load, and their last write
        self._deferred: dict[tuple[str, str], float] = {}
        self._rebuilds: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.rebuild_after = REBUILD_AFTER_SECONDS

    async def dimension(self, tenant: str, space: str) -> int | None:
        """The tenant's dimension of ``space`` (None before its first vector)."""
        known = self._dims.get((tenant, space))
        if known is not None:
            return known
        stmt = select(SPACES.c.dim).where(SPACES.c.tenant_id == tenant, SPACES.c.name == space)
        async with self.engine.connect() as conn:
            dim = (await conn.execute(stmt)).scalar_one_or_none()
        return int(dim) if dim is not None else None

    async def ensure_space(self, tenant: str, space: str, dim: int, index: bool = True) -> None:
        """Register the tenant's ``space`` with ``dim`` and build its HNSW index once
        (unless ``index`` is off: a bulk load builds it after). A space whose vectors were
        all deleted may change its dimension."""
        if not SPACE_NAME.match(space):
            raise ValueError(f"invalid vector space name {space!r}")
        if not 1 <= dim <= MAX_DIM:
            raise DimensionMismatch(f"dimension must be 1..{MAX_DIM}, got {dim}")
        if self._dims.get((tenant, space)) == dim:
            return
        async with self.engine.begin() as conn:
            stored, changed = await self._register(conn, tenant, space, dim)
            if stored != dim:
                raise DimensionMismatch(
                    f"your vectors in {space!r} have {stored} dimensions; this one has {dim}"
                )
            await conn.exec_driver_sql("RESET ROLE")  # DDL needs the owner, not a tenant
            # CREATE INDEX IF NOT EXISTS is not safe against itself: one process at a time
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                {"k": "index:" + index_name(tenant, space)},
            )
            if changed:
                await conn.execute(text(f"DROP INDEX IF EXISTS {index_name(tenant, space)}"))
            if index and (tenant, space) not in self._deferred:
                await conn.execute(text(create_index(tenant, space, dim)))
        self._dims[(tenant, space)] = dim

    async def _register(
        self, conn: AsyncConnection, tenant: str, space: str, dim: int
    ) -> tuple[int, bool]:
        """(the space's dimension, whether it was just changed to ``dim``)."""
        await conn.execute(
            insert(SPACES).values(tenant_id=tenant, name=space, dim=dim).on_conflict_do_nothing()
        )
        where = (SPACES.c.tenant_id == tenant, SPACES.c.name == space)
        stored = int((await conn.execute(select(SPACES.c.dim).where(*where))).scalar_one())
        if stored == dim:
            return stored, False
        used = await conn.execute(
            select(T.c.item_id).where(T.c.tenant_id == tenant, T.c.space == space).limit(1)
        )
        if used.first() is not None:
            return stored, False
        await conn.execute(SPACES.update().where(*where).values(dim=dim))
        return dim, True

    async def upsert(
        self, tenant: str, space: str, item_pks: Sequence[int], vectors: np.ndarray
    ) -> None:
        if len(item_pks) == 0:
            return
        bulk = len(item_pks) >= BULK_VECTORS
        await self.ensure_space(tenant, space, int(vectors.shape[1]), index=not bulk)
        if bulk:
            await self._defer_index(tenant, space)
        values = [
            {"t": tenant, "i": pk, "s": space, "e": e}
            for pk, e in zip(item_pks, vector_texts(vectors), strict=True)
        ]
        async with self.engine.begin() as conn:
            await conn.execute(UPSERT_VECTORS, values)  # one prepared statement, many rows
        if bulk:
            self._schedule_rebuild(tenant, space, int(vectors.shape[1]))

    # --- the index of a space, deferred during bulk loads -------------------------------
    async def _defer_index(self, tenant: str, space: str) -> None:
        key = (tenant, space)
        dropped = key in self._deferred
        self._deferred[key] = time.monotonic()
        if not dropped:
            await self._ddl(tenant, space, f"DROP INDEX IF EXISTS {index_name(tenant, space)}")

    def _schedule_rebuild(self, tenant: str, space: str, dim: int) -> None:
        key = (tenant, space)
        self._deferred[key] = time.monotonic()
        task = self._rebuilds.get(key)
        if task is None or task.done():
            self._rebuilds[key] = asyncio.create_task(self._rebuild_when_quiet(tenant, space, dim))

    async def _rebuild_when_quiet(self, tenant: str, space: str, dim: int) -> None:
        key = (tenant, space)
        while True:  # until no process wrote to the space for a while
            wait = self._deferred[key] + self.rebuild_after - time.monotonic()
            wait = max(wait, self.rebuild_after - await self._quiet_for(tenant, space))
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        try:
            await self.build_index(tenant, space, dim)
        finally:
            self._deferred.pop(key, None)

    async def _quiet_for(self, tenant: str, space: str) -> float:
        """Seconds since any process last wrote a vector of the space."""
        stmt = text(
            "SELECT coalesce(extract(epoch FROM now() - max(updated_at)), 1e9) "
            "FROM item_vectors WHERE tenant_id = :t AND space = :s"
        )
        with tenant_scope(None):
            async with self.engine.connect() as conn:
                return float((await conn.execute(stmt, {"t": tenant, "s": space})).scalar_one())

    async def build_index(self, tenant: str, space: str, dim: int) -> None:
        """Build the space's index if it is missing."""
        started = time.perf_counter()
        await self._ddl(tenant, space, create_index(tenant, space, dim))
        log.info("index of %s/%s ready in %.1fs", tenant, space, time.perf_counter() - started)

    async def _ddl(self, tenant: str, space: str, statement: str) -> None:
        """One DDL statement on the space's index, as the owner, one process at a time."""
        with tenant_scope(None):
            async with self.engine.begin() as conn:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                    {"k": "index:" + index_name(tenant, space)},
                )
                await conn.execute(text(statement))

    async def finish_rebuilds(self) -> None:
        """Build now what waits for a pause (before the process stops)."""
        for (tenant, space), task in list(self._rebuilds.items()):
            if task.done():
                continue
            task.cancel()
            dim = self._dims.get((tenant, space))
            if dim is not None:
                await self.build_index(tenant, space, dim)
            self._deferred.pop((tenant, space), None)

    async def ensure_indexes(self) -> None:
        """Build the indexes a stopped process left to build."""
        with tenant_scope(None):
            async with self.engine.connect() as conn:
                spaces = (await conn.execute(select(SPACES))).all()
        for r in spaces:
            if (r.tenant_id, r.name) not in self._deferred:
                await self.build_index(r.tenant_id, r.name, int(r.dim))

    async def get(self, tenant: str, space: str, item_pks: Sequence[int]) -> dict[int, np.ndarray]:
        stmt = select(T.c.item_id, T.c.embedding).where(
            T.c.tenant_id == tenant, T.c.space == space, any_of(T.c.item_id, list(item_pks))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {r.item_id: np.asarray(r.embedding, dtype=np.float32) for r in rows}

    async def nearest(
        self,
        tenant: str,
        space: str,
        vector: np.ndarray,
        limit: int,
        conditions: Sequence[ColumnElement[bool]] = (),
    ) -> list[tuple[int, float]]:
        """Items nearest to ``vector`` (cosine distance) among those meeting ``conditions``
        on the items table, through the tenant's HNSW index for ``space``. A space the
        tenant has no vectors in, or of another dimension, has no neighbours."""
        if await self.dimension(tenant, space) != int(vector.shape[0]):
            return []
        stmt = nearest_query(tenant, space, vector, limit, conditions)
        async with self.engine.begin() as conn:
            # iterative scans keep returning rows while filters drop the nearest ones
            await conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = (await conn.execute(stmt)).all()
        return [(int(r.item_id), float(r.d)) for r in rows]
