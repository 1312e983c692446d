"""Items: lookups by id for DataLoaders, keyset-paginated listing, bulk upsert and delete."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.records import ItemFilter, ItemRecord
from storage.sql import any_of
from storage.tables import Item

T = Item.__table__  # type: ignore[attr-defined]
WRITABLE = ("entity_type", "title", "text", "categories", "tags", "attributes", "hidden")


def _record(row: Row[Any]) -> ItemRecord:
    m = row._mapping
    return ItemRecord(
        pk=m["id"],
        external_id=m["external_id"],
        entity_type=m["entity_type"],
        title=m["title"],
        text=m["text"],
        categories=list(m["categories"]),
        tags=list(m["tags"]),
        attributes=m["attributes"],
        hidden=m["hidden"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
    )


class ItemRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def by_external_ids(self, tenant: str, ids: Iterable[str]) -> dict[str, ItemRecord]:
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        stmt = select(T).where(T.c.tenant_id == tenant, any_of(T.c.external_id, wanted))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {r.external_id: _record(r) for r in rows}

    async def by_pks(self, tenant: str, pks: Iterable[int]) -> dict[int, ItemRecord]:
        wanted = list(dict.fromkeys(pks))
        if not wanted:
            return {}
        stmt = select(T).where(T.c.tenant_id == tenant, any_of(T.c.id, wanted))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return {r.id: _record(r) for r in rows}

    async def page(
        self, tenant: str, flt: ItemFilter, limit: int, after_pk: int | None = None
    ) -> list[ItemRecord]:
        """Items in insertion order, ``limit`` of them after ``after_pk`` (keyset pagination)."""
        stmt = select(T).where(T.c.tenant_id == tenant)
        if flt.entity_type is not None:
            stmt = stmt.where(T.c.entity_type == flt.entity_type)
        if flt.categories_any:
            stmt = stmt.where(T.c.categories.overlap(list(flt.categories_any)))
        if flt.tags_any:
            stmt = stmt.where(T.c.tags.overlap(list(flt.tags_any)))
        if flt.hidden is not None:
            stmt = stmt.where(T.c.hidden == flt.hidden)
        if flt.external_ids:
            stmt = stmt.where(any_of(T.c.external_id, list(flt.external_ids)))
        if after_pk is not None:
            stmt = stmt.where(T.c.id > after_pk)
        stmt = stmt.order_by(T.c.id).limit(limit)
        async with self.engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(stmt)).all()]

    async def upsert_many(
        self, tenant: str, rows: Sequence[dict[str, Any]]
    ) -> list[tuple[ItemRecord, bool]]:
        """Insert or update items by external id; returns each record and whether it was new.

        Rows may name different subsets of ``WRITABLE``: a column a row leaves out keeps its
        stored value (or its default for a new item). Rows are grouped by the columns they set
        so that each group is one multi-row ``INSERT .. ON CONFLICT`` statement.
        """
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            cols = tuple(c for c in WRITABLE if c in row)
            groups.setdefault(cols, []).append(row)
        out: dict[str, tuple[ItemRecord, bool]] = {}
        async with self.engine.begin() as conn:
            for cols, group in groups.items():
                values = [
                    {"tenant_id": tenant, "external_id": r["external_id"]} | {c: r[c] for c in cols}
                    for r in group
                ]
                stmt = insert(T)
                update = {c: stmt.excluded[c] for c in cols} | {"updated_at": func.now()}
                stmt = stmt.on_conflict_do_update(
                    index_elements=[T.c.tenant_id, T.c.external_id], set_=update
                ).returning(*T.c, (literal_column("xmax") == 0).label("inserted"))
                for r in (await conn.execute(stmt, values)).all():
                    out[r.external_id] = (_record(r), bool(r.inserted))
        return [out[r["external_id"]] for r in rows if r["external_id"] in out]

    async def ensure_many(self, tenant: str, external_ids: Iterable[str]) -> dict[str, int]:
        """Primary keys for ``external_ids``, creating bare items for unknown ones."""
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

    async def pks(self, tenant: str, external_ids: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(external_ids))
        if not wanted:
            return {}
        stmt = select(T.c.external_id, T.c.id).where(
            T.c.tenant_id == tenant, any_of(T.c.external_id, wanted)
        )
        async with self.engine.connect() as conn:
            return {r.external_id: r.id for r in await conn.execute(stmt)}

    async def delete_many(self, tenant: str, external_ids: Iterable[str]) -> list[str]:
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

    async def count(self, tenant: str) -> int:
        stmt = select(func.count()).select_from(T).where(T.c.tenant_id == tenant)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def iterate(self, tenant: str, batch: int = 5000) -> Any:
        """All items in pk order, a batch at a time (for export)."""
        after: int | None = None
        while True:
            page = await self.page(tenant, ItemFilter(), batch, after)
            if not page:
                return
            for rec in page:
                yield rec
            after = page[-1].pk
