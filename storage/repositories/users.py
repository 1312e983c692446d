"""Users: lookups, upsert, implicit creation from events, and GDPR-style deletion."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.records import UserRecord
from storage.sql import any_of
from storage.tables import User

T = User.__table__  # type: ignore[attr-defined]


def _record(row: Row[Any]) -> UserRecord:
    m = row._mapping
    return UserRecord(
        pk=m["id"],
        external_id=m["external_id"],
        attributes=m["attributes"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class UserRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def by_external_ids(self, tenant: str, ids: Iterable[str]) -> dict[str, UserRecord]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        stmt = select(T).where(T.c.tenant_id == tenant, any_of(T.c.external_id, wanted))
        async with self.engine.connect() as conn:
            return {r.external_id: _record(r) for r in (await conn.execute(stmt)).all()}

    async def by_pks(self, tenant: str, pks: Iterable[int]) -> dict[int, UserRecord]:
        wanted = list(dict.fromkeys(pks))
        if not wanted:
            return {}
        stmt = select(T).where(T.c.tenant_id == tenant, any_of(T.c.id, wanted))
        async with self.engine.connect() as conn:
            return {r.id: _record(r) for r in (await conn.execute(stmt)).all()}

    async def upsert_many(
        self, tenant: str, rows: Sequence[dict[str, Any]]
    ) -> list[tuple[UserRecord, bool]]:
        """Create or update users; a row without ``attributes`` keeps the stored ones."""
        out: dict[str, tuple[UserRecord, bool]] = {}
        async with self.engine.begin() as conn:
            for has_attrs in (True, False):
                values = [
                    {"tenant_id": tenant, "external_id": r["external_id"]}
                    | ({"attributes": r["attributes"]} if has_attrs else {})
                    for r in rows
                    if ("attributes" in r) == has_attrs
                ]
                if not values:
                    continue
                stmt = insert(T)
                update: dict[str, Any] = {"updated_at": func.now()}
                if has_attrs:
                    update["attributes"] = stmt.excluded.attributes
                stmt = stmt.on_conflict_do_update(
                    index_elements=[T.c.tenant_id, T.c.external_id], set_=update
                ).returning(*T.c, (literal_column("xmax") == 0).label("inserted"))
                for r in (await conn.execute(stmt, values)).all():
                    out[r.external_id] = (_record(r), bool(r.inserted))
        return [out[r["external_id"]] for r in rows if r["external_id"] in out]

    async def ensure_many(self, tenant: str, external_ids: Iterable[str]) -> dict[str, int]:
        """Primary keys for ``external_ids``; users are created on their first event."""
        wanted = list(dict.fromkeys(external_ids))
        if not wanted:
            return {}
        async with self.engine.begin() as conn:
            await conn.execute(
                insert(T).on_conflict_do_nothing(index_elements=[T.c.tenant_id, T.c.external_id]),
                [{"tenant_id": tenant, "external_id": e} for e in wanted],
            )
            rows = await conn.execute(
                select(T.c.external_id, T.c.id).where(
                    T.c.tenant_id == tenant, any_of(T.c.external_id, wanted)
                )
            )
            return {r.external_id: r.id for r in rows}

    async def delete_many(self, tenant: str, external_ids: Iterable[str]) -> list[str]:
        """Delete users; their interactions go with them (``ON DELETE CASCADE``)."""
        wanted = list(dict.fromkeys(external_ids))
        if not wanted:
            return []
        stmt = (
            delete(T)
            .where(T.c.tenant_id == tenant, any_of(T.c.external_id, wanted))
            .returning(T.c.external_id)
        )
        async with self.engine.begin() as conn:
            return list((await conn.execute(stmt)).scalars())

    async def iterate(self, tenant: str, batch: int = 5000) -> Any:
        after = 0
        while True:
            stmt = (
                select(T)
                .where(T.c.tenant_id == tenant, T.c.id > after)
                .order_by(T.c.id)
                .limit(batch)
            )
            async with self.engine.connect() as conn:
                rows = [_record(r) for r in (await conn.execute(stmt)).all()]
            if not rows:
                return
            for rec in rows:
                yield rec
            after = rows[-1].pk
