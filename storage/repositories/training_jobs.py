"""Training jobs: enqueued by API workers, claimed by the trainer (one at a time, with
``FOR UPDATE SKIP LOCKED`` so several trainers never take the same job)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import TRAINING_JOBS as T
from storage.tenancy import tenant_scope


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    tenant: str
    algorithms: list[str] | None
    configs: dict[str, Any]
    status: str
    result: list[Any] | None
    error_code: str | None
    error: str | None


def _record(m: Any) -> JobRecord:
    return JobRecord(
        m["id"],
        m["tenant_id"],
        m["algorithms"],
        m["configs"],
        m["status"],
        m["result"],
        m["error_code"],
        m["error"],
    )


class TrainingJobRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def enqueue(
        self, tenant: str, algorithms: list[str] | None, configs: dict[str, Any]
    ) -> int:
        stmt = (
            T.insert()
            .values(tenant_id=tenant, algorithms=algorithms, configs=configs)
            .returning(T.c.id)
        )
        async with self.engine.begin() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def get(self, tenant: str, job_id: int) -> JobRecord | None:
        stmt = select(T).where(T.c.tenant_id == tenant, T.c.id == job_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _record(row._mapping) if row is not None else None

    async def claim(self) -> JobRecord | None:
        """The oldest pending job of any tenant, marked running (the trainer's own role,
        outside tenant scope)."""
        sql = text(
            "UPDATE training_jobs SET status = 'running', started_at = now() WHERE id = "
            "(SELECT id FROM training_jobs WHERE status = 'pending' ORDER BY id "
            "FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING *"
        )
        with tenant_scope(None):
            async with self.engine.begin() as conn:
                row = (await conn.execute(sql)).first()
        return _record(row._mapping) if row is not None else None

    async def finish(
        self,
        job_id: int,
        result: list[Any] | None = None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None:
        stmt = (
            T.update()
            .where(T.c.id == job_id)
            .values(
                status="failed" if error_code else "done",
                result=result,
                error_code=error_code,
                error=error,
                finished_at=func.now(),
            )
        )
        with tenant_scope(None):
            async with self.engine.begin() as conn:
                await conn.execute(stmt)
