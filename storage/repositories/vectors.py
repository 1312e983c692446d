"""Item embeddings in pgvector, one named space per embedder, each with its HNSW index."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from pgvector import Vector
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import ItemVector, VectorSpace

T = ItemVector.__table__  # type: ignore[attr-defined]
SPACES = VectorSpace.__table__  # type: ignore[attr-defined]
SPACE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
MAX_DIM = 2000  # pgvector's HNSW limit for the ``vector`` type


class DimensionMismatch(ValueError):
    pass


class VectorRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._dims: dict[str, int] = {}

    async def ensure_space(self, space: str, dim: int) -> None:
        """Register ``space`` with ``dim`` and build its HNSW index (cosine) once."""
        if not SPACE_NAME.match(space):
            raise ValueError(f"invalid vector space name {space!r}")
        if not 1 <= dim <= MAX_DIM:
            raise DimensionMismatch(f"dimension must be 1..{MAX_DIM}, got {dim}")
        known = self._dims.get(space)
        if known == dim:
            return
        async with self.engine.begin() as conn:
            await conn.execute(insert(SPACES).values(name=space, dim=dim).on_conflict_do_nothing())
            stored = (
                await conn.execute(select(SPACES.c.dim).where(SPACES.c.name == space))
            ).scalar_one()
            if stored != dim:
                raise DimensionMismatch(f"vector space {space!r} has dimension {stored}, got {dim}")
            await conn.exec_driver_sql("RESET ROLE")  # DDL needs the owner, not a tenant
            await conn.execute(
                text(
                    f"CREATE INDEX IF NOT EXISTS ix_item_vectors_hnsw_{space} ON item_vectors "
                    f"USING hnsw ((embedding::vector({dim})) vector_cosine_ops) "
                    f"WHERE space = '{space}'"
                )
            )
        self._dims[space] = dim

    async def upsert(
        self, tenant: str, space: str, item_pks: Sequence[int], vectors: np.ndarray
    ) -> None:
        if len(item_pks) == 0:
            return
        await self.ensure_space(space, int(vectors.shape[1]))
        values = [
            {"tenant_id": tenant, "item_id": pk, "space": space, "embedding": Vector(v)}
            for pk, v in zip(item_pks, vectors.astype(np.float32), strict=True)
        ]
        stmt = insert(T)
        stmt = stmt.on_conflict_do_update(
            index_elements=[T.c.item_id, T.c.space],
            set_={"embedding": stmt.excluded.embedding, "updated_at": text("now()")},
        )
        async with self.engine.begin() as conn:
            for start in range(0, len(values), 1000):
                await conn.execute(stmt.values(values[start : start + 1000]))

    async def get(self, space: str, item_pks: Sequence[int]) -> dict[int, np.ndarray]:
        stmt = select(T.c.item_id, T.c.embedding).where(
            T.c.space == space, T.c.item_id.in_(list(item_pks))
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {r.item_id: np.asarray(r.embedding, dtype=np.float32) for r in rows}

    async def nearest(
        self, tenant: str, space: str, query: np.ndarray, limit: int
    ) -> list[tuple[int, float]]:
        """Items nearest to ``query`` by cosine distance, through the space's HNSW index."""
        dim = int(query.shape[0])
        await self.ensure_space(space, dim)
        sql = text(
            f"SELECT item_id, (embedding::vector({dim})) <=> CAST(:q AS vector({dim})) AS d "
            "FROM item_vectors WHERE space = :space AND tenant_id = :tenant "
            "ORDER BY d LIMIT :limit"
        )
        params = {
            "q": Vector(query.astype(np.float32)).to_text(),
            "space": space,
            "tenant": tenant,
            "limit": limit,
        }
        async with self.engine.connect() as conn:
            rows = (await conn.execute(sql, params)).all()
        return [(r.item_id, float(r.d)) for r in rows]
