"""Item embeddings in pgvector: named spaces per tenant, each with its own dimension and
its own partial HNSW index.

Vectors go in as one statement over two arrays (``UPSERT_VECTORS``): SQLAlchemy compiling a
fresh multi-row ``INSERT`` per slice and pgvector's per-float formatting took half of an API
worker during bulk loads.

Inserting into an HNSW index is a graph search per vector, three quarters of a bulk
load's cost, while building the index once over the loaded rows is several times
cheaper. So the index is **deferred** (:class:`IndexKeeper`): a space gets its index when it
has ``INDEX_MIN_VECTORS`` vectors and its writes have paused, built with ``CREATE INDEX
CONCURRENTLY`` so that reads and writes go on meanwhile; a load that rewrites a large share
of a space drops the space's index first. Queries never depend on the index: without it
PostgreSQL scans the space exactly. The index predicate names the dimension, so an index of
a space's former dimension never sees (or fails on) the vectors of its new one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from pgvector.sqlalchemy import VECTOR
from sqlalchemy import ColumnElement, Select, bindparam, cast, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.database import libpq_url
from storage.hot_reads import HotReads
from storage.repositories.vector_indexes import IndexKeeper, space_predicate
from storage.sql import any_of
from storage.tables import ITEM_VECTORS, ITEMS, VECTOR_SPACES

T = ITEM_VECTORS
SPACES = VECTOR_SPACES
SPACE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
MAX_DIM = 2000  # pgvector's HNSW limit for the ``vector`` type


class DimensionMismatch(ValueError):
    pass


#: one statement for any number of vectors: an array of pks and one flat ``real[]`` of all
#: the vectors (encoded in binary by asyncpg, 14× quicker than formatting them as text),
#: sliced back into rows of ``:d`` values
UPSERT_VECTORS = text(
    "INSERT INTO item_vectors (tenant_id, item_id, space, embedding) "
    "SELECT :t, u.i, :s, "
    "CAST((CAST(:flat AS real[]))[(u.n - 1) * :d + 1 : u.n * :d] AS vector) "
    "FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS u(i, n) "
    "ON CONFLICT (item_id, space) DO UPDATE SET embedding = excluded.embedding, "
    "updated_at = now()"
)
#: floats per statement: bounds a write's memory and stays far below PostgreSQL's limits
#: on one array (134M elements) and one message (1 GB)
FLOATS_PER_STATEMENT = 1_000_000


def vector_texts(vectors: np.ndarray) -> list[str]:
    """pgvector's text form of each row, with the 9 significant digits that give float32
    values back exactly."""
    rows = np.asarray(vectors, np.float32).tolist()
    return ["[" + ",".join(map("{:.9g}".format, row)) + "]" for row in rows]


def nearest_query(
    tenant: str,
    space: str,
    vector: np.ndarray | int,
    limit: int,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    """``item_id`` and cosine distance ``d`` of the ``limit`` items nearest to ``vector``
    among those meeting ``conditions`` on the items table, nearest first, through the
    tenant's HNSW index for ``space`` when it has one (the query repeats the index's
    predicate), else by an exact scan of the space. Given a
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
        .where(text(space_predicate(tenant, space, dim, "item_vectors")), *conditions)
        .order_by(text("d"))
        .limit(limit)
    )


class VectorRepository:
    def __init__(self, engine: AsyncEngine, hot: HotReads | None = None) -> None:
        self.engine = engine
        self.hot = hot
        url = hot.url if hot is not None else libpq_url(engine.url.render_as_string(False))
        self.indexes = IndexKeeper(engine, url)
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
        """Register the tenant's ``space`` with ``dim`` (its index comes later, from
        :class:`IndexKeeper`). A space whose vectors were all deleted may change its
        dimension."""
        if not SPACE_NAME.match(space):
            raise ValueError(f"invalid vector space name {space!r}")
        if not 1 <= dim <= MAX_DIM:
            raise DimensionMismatch(f"dimension must be 1..{MAX_DIM}, got {dim}")
        if self._dims.get((tenant, space)) == dim:
            return
        async with self.engine.begin() as conn:
            stored, changed = await self._register(conn, tenant, space, dim)
        if changed:  # an index of the earlier form would cast the new vectors
            await self.indexes.drop_legacy(tenant, space)
        if stored != dim:
            raise DimensionMismatch(
                f"your vectors in {space!r} have {stored} dimensions; this one has {dim}"
            )
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
        self,
        tenant: str,
        space: str,
        item_pks: Sequence[int],
        vectors: np.ndarray,
        rewrite: bool = False,
    ) -> None:
        """Store the vectors of items (rows of ``vectors``, in ``item_pks``' order). A
        ``rewrite`` of much of the space (a training's vectors) may drop its index first,
        to be built again once writes pause."""
        if len(item_pks) != len(vectors):
            raise ValueError(f"{len(item_pks)} items but {len(vectors)} vectors")
        if len(item_pks) == 0:
            return
        dim = int(vectors.shape[1])
        await self.ensure_space(tenant, space, dim)
        if rewrite:  # stamped first: the index it may drop must not be rebuilt before it
            await self.indexes.stamp(tenant, space)
            await self.indexes.make_room(tenant, space, dim, len(item_pks))
        flat = np.ascontiguousarray(vectors, np.float32)
        pks = [int(pk) for pk in item_pks]
        rows = max(1, FLOATS_PER_STATEMENT // dim)
        # a transaction per chunk, each followed by a stamp (its own, so no writer holds a
        # connection while waiting for another); the items' rows were written before
        for start in range(0, len(pks), rows):
            chunk = {"t": tenant, "s": space, "d": dim, "ids": pks[start : start + rows]}
            chunk["flat"] = flat[start : start + rows].ravel()
            async with self.engine.begin() as conn:
                await conn.execute(UPSERT_VECTORS, chunk)
            await self.indexes.stamp(tenant, space)

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
        on the items table (``nearest_query``). A space the
        tenant has no vectors in, or of another dimension, has no neighbours."""
        if await self.dimension(tenant, space) != int(vector.shape[0]):
            return []
        stmt = nearest_query(tenant, space, vector, limit, conditions)
        async with self.engine.begin() as conn:
            # iterative scans keep returning rows while filters drop the nearest ones
            await conn.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
            rows = (await conn.execute(stmt)).all()
        return [(int(r.item_id), float(r.d)) for r in rows]
