"""Versioned model artifacts (trained models) stored in PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.records import ArtifactRecord
from storage.repositories.webhooks import MODEL_TRAINED, WebhookRepository
from storage.tables import MODEL_ARTIFACTS

T = MODEL_ARTIFACTS


class ArtifactRepository:
    def __init__(
        self,
        engine: AsyncEngine,
        keep_versions: int = 3,
        webhooks: WebhookRepository | None = None,
    ) -> None:
        self.engine = engine
        self.keep_versions = keep_versions
        #: ``model.trained`` deliveries are written with the artifact
        self.webhooks = webhooks

    async def save(
        self,
        tenant: str,
        algorithm: str,
        blob: bytes,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> int:
        """Store a new version (previous + 1) and return its number. Only the newest
        ``keep_versions`` of the algorithm are kept (the newest is the one in use). The
        tenant's ``model.trained`` webhooks get a delivery in the same transaction (found
        in it, not in a cache: trainings are rare, and a new webhook must not miss one)."""
        queued = 0
        async with self.engine.begin() as conn:
            # Serialise concurrent saves of one algorithm so versions never collide.
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{tenant}/{algorithm}"}
            )
            current = await conn.execute(
                select(func.coalesce(func.max(T.c.version), 0)).where(
                    T.c.tenant_id == tenant, T.c.algorithm == algorithm
                )
            )
            version = int(current.scalar_one()) + 1
            await conn.execute(
                T.insert().values(
                    tenant_id=tenant,
                    algorithm=algorithm,
                    version=version,
                    params=params or {},
                    metrics=metrics or {},
                    blob=blob,
                )
            )
            await conn.execute(
                T.delete().where(
                    T.c.tenant_id == tenant,
                    T.c.algorithm == algorithm,
                    T.c.version <= version - self.keep_versions,
                )
            )
            if self.webhooks is not None:
                queued = await self.webhooks.write(
                    conn, tenant, MODEL_TRAINED, [trained(algorithm, version, metrics)], None
                )
        if queued and self.webhooks is not None:
            await self.webhooks.wake()
        return version

    async def versions(self, tenant: str, algorithm: str) -> list[int]:
        stmt = (
            select(T.c.version)
            .where(T.c.tenant_id == tenant, T.c.algorithm == algorithm)
            .order_by(T.c.version)
        )
        async with self.engine.connect() as conn:
            return [int(v) for v in (await conn.execute(stmt)).scalars()]

    async def latest(
        self, tenant: str, algorithm: str, *, with_blob: bool = True
    ) -> ArtifactRecord | None:
        cols = [T.c.algorithm, T.c.version, T.c.params, T.c.metrics, T.c.created_at]
        if with_blob:
            cols.append(T.c.blob)
        stmt = (
            select(*cols)
            .where(T.c.tenant_id == tenant, T.c.algorithm == algorithm)
            .order_by(T.c.version.desc())
            .limit(1)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        m = row._mapping
        return ArtifactRecord(
            algorithm=m["algorithm"],
            version=m["version"],
            params=m["params"],
            metrics=m["metrics"],
            created_at=m["created_at"],
            blob=bytes(m["blob"]) if with_blob else b"",
        )


def trained(algorithm: str, version: int, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The ``data`` of a ``model.trained`` delivery."""
    m = metrics or {}
    return {
        "algorithm": algorithm,
        "version": version,
        "users": m.get("users"),
        "items": m.get("items"),
        "events": m.get("events"),
        "metrics": m,
    }
