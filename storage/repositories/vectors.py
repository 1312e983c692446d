"""Item embeddings in pgvector: named spaces per tenant, each with its own dimension and
its own partial HNSW index.

Vectors go in as one statement over arrays (``unnest``), each vector formatted once as
text: SQLAlchemy compiling a fresh multi-row ``INSERT`` per slice and pgvector's per-float
formatting took half of an API worker during bulk loads. Inserting into the HNSW index
(a graph search per vector, inside PostgreSQL) is the rest of a bulk load's cost.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import ColumnElement, Select, bindparam, cast, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.hot_reads import HotReads
from storage.sql import any_of
from storage.tables import ITEM_VECTORS, ITEMS, VECTOR_SPACES

T = ITEM_VECTORS
SPACES = VECTOR_SPACES
SPACE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
MAX_DIM = 2000  # pgvector's HNSW limit for the ``vector`` type


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


#: one statement for any number of vectors: arrays of pks and of vectors as text
UPSERT_VECTORS = text(
    "INSERT INTO item_vectors (tenant_id, item_id, space, embedding) "
    "SELECT :t, u.i, :s, CAST(u.e AS vector) "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:es AS text[])) AS u(i, e) "
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
    vector: np.ndarray | int,
    limit: int,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    """``item_id`` and cosine distance ``d`` of the ``limit`` items nearest to ``vector``
    among those meeting ``conditions`` on the items table, nearest first, through the
    tenant's HNSW index for ``space`` (the query repeats the index's predicate). Given a
    dimension instead of a vector, the statement binds ``query_vector`` when it runs."""
    dim = vector if isinstance(vector, int) else int(vector.shape[0])
    value: Any = (
        bindparam("query_vector", type_=VECTOR(dim))
        if isinstance(vector, int)
        else vector.astype(np.float32)
    )
    distance = cast(T.c.embedding, VECTOR(dim)).cosine_distance(value)
    return (
        select(T.c.item_id, distance.label("d"))
        .join(ITEMS, ITEMS.c.id == T.c.item_id)
        .where(text(space_predicate(tenant, space, "item_vectors")), *conditions)
        .order_by(text("d"))
        .limit(limit)
    )


class VectorRepository:
    def __init__(self, engine: AsyncEngine, hot: HotReads | None = None) -> None:
        self.engine = engine
        self.hot = hot
        self._dims: dict[tuple[str, str], int] = {}

    async def dimension(self, tenant: str, space: str) -> int | None:
        """The tenant's dimension of ``space`` (None before its first vector)."""
        known = self._dims.get((tenant, space))
        if known is not None:
            return known
        # read on every search (another process writes the vectors): one round trip on
        # the hot-read pool, else through SQLAlchemy
        if self.hot is not None:
            row = await self.hot.fetchrow(
                f"SELECT dim FROM {SPACES.name} WHERE tenant_id = $1 AND name = $2", tenant, space
            )
            if not isinstance(row, bool):  # False: that pool is unavailable
                return int(row["dim"]) if row is not None else None
        stmt = select(SPACES.c.dim).where(SPACES.c.tenant_id == tenant, SPACES.c.name == space)
        async with self.engine.connect() as conn:
            dim = (await conn.execute(stmt)).scalar_one_or_none()
        return int(dim) if dim is not None else None

    async def ensure_space(self, tenant: str, space: str, dim: int) -> None:
        """Register the tenant's ``space`` with ``dim`` and build its HNSW index once. A
        space whose vectors were all deleted may change its dimension."""
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
        await self.ensure_space(tenant, space, int(vectors.shape[1]))
        values = {
            "t": tenant,
            "s": space,
            "ids": [int(pk) for pk in item_pks],
            "es": vector_texts(vectors),
        }
        async with self.engine.begin() as conn:
            await conn.execute(UPSERT_VECTORS, values)

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
