"""What items and users share: rows of a tenant known by the client's own id
(``external_id``), looked up in bulk, upserted column by column, deleted and paged."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from sqlalchemy import ColumnElement, Row, Table, delete, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.sql import any_of, in_transaction


class Keyed(Protocol):
    @property
    def pk(self) -> int: ...


R = TypeVar("R", bound=Keyed)


class Directory(Generic[R]):
    """A table of a tenant's entities by external id. Subclasses set ``table``,
    ``writable`` (the columns a client may set) and ``record`` (row -> plain record)."""

    table: ClassVar[Table]
    writable: ClassVar[tuple[str, ...]]

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # generated columns (the items' search document) are the database's, not records'
        self.columns = [c for c in self.table.c if c.computed is None]

    @staticmethod
    def record(row: Row[Any]) -> R:  # pragma: no cover - abstract
        raise NotImplementedError

    async def by_external_ids(self, tenant: str, ids: Iterable[str]) -> dict[str, R]:
        t = self.table
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        stmt = select(*self.columns).where(t.c.tenant_id == tenant, any_of(t.c.external_id, wanted))
        async with self.engine.connect() as conn:
            return {r.external_id: self.record(r) for r in (await conn.execute(stmt)).all()}

    async def by_pks(self, tenant: str, pks: Iterable[int]) -> dict[int, R]:
        t = self.table
        wanted = list(dict.fromkeys(pks))
        if not wanted:
            return {}
        stmt = select(*self.columns).where(t.c.tenant_id == tenant, any_of(t.c.id, wanted))
        async with self.engine.connect() as conn:
            return {r.id: self.record(r) for r in (await conn.execute(stmt)).all()}

    async def pks(self, tenant: str, external_ids: Iterable[str]) -> dict[str, int]:
        t = self.table
        wanted = list(dict.fromkeys(external_ids))
        if not wanted:
            return {}
        stmt = select(t.c.external_id, t.c.id).where(
            t.c.tenant_id == tenant, any_of(t.c.external_id, wanted)
        )
        async with self.engine.connect() as conn:
            return {r.external_id: r.id for r in await conn.execute(stmt)}

    async def upsert_many(
        self, tenant: str, rows: Sequence[dict[str, Any]]
    ) -> list[tuple[R, bool]]:
        """Insert or update by external id; each record and whether it was new.

        Rows may set different subsets of ``writable``: a column a row leaves out keeps its
        stored value (or its default for a new row). Rows are grouped by the columns they
        set, so that each group is one multi-row ``INSERT .. ON CONFLICT`` statement."""
        t = self.table
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:
            groups.setdefault(tuple(c for c in self.writable if c in row), []).append(row)
        out: dict[str, tuple[R, bool]] = {}
        async with self.engine.begin() as conn:
            for cols, group in groups.items():
                values = [
                    {"tenant_id": tenant, "external_id": r["external_id"]} | {c: r[c] for c in cols}
                    for r in sorted(group, key=lambda r: str(r["external_id"]))  # lock order
                ]
                stmt = insert(t)
                update = {c: stmt.excluded[c] for c in cols} | {"updated_at": func.now()}
                upsert = stmt.on_conflict_do_update(
                    index_elements=[t.c.tenant_id, t.c.external_id], set_=update
                ).returning(*self.columns, (literal_column("xmax") == 0).label("inserted"))
                for r in (await conn.execute(upsert, values)).all():
                    out[r.external_id] = (self.record(r), bool(r.inserted))
        return [out[r["external_id"]] for r in rows if r["external_id"] in out]

    async def ensure_many(
        self, tenant: str, external_ids: Iterable[str], conn: AsyncConnection | None = None
    ) -> dict[str, int]:
        """Primary keys for ``external_ids``, creating bare rows for unknown ones (users on
        their first event; items too when ``RECOGRAPH_AUTO_CREATE_ITEMS`` is on). Inside
        ``conn``'s transaction when given (one commit for a whole write)."""
        t = self.table
        # sorted: concurrent writers then lock new keys in one order, so they cannot deadlock
        wanted = sorted(set(external_ids))
        if not wanted:
            return {}
        async with in_transaction(self.engine, conn) as tx:
            await tx.execute(
                insert(t).on_conflict_do_nothing(index_elements=[t.c.tenant_id, t.c.external_id]),
                [{"tenant_id": tenant, "external_id": e} for e in wanted],
            )
            rows = await tx.execute(
                select(t.c.external_id, t.c.id).where(
                    t.c.tenant_id == tenant, any_of(t.c.external_id, wanted)
                )
            )
            return {r.external_id: r.id for r in rows}

    async def delete_many(self, tenant: str, external_ids: Iterable[str]) -> dict[str, int]:
        """Delete rows (what refers to them goes too, ``ON DELETE CASCADE``); the external
        ids deleted, with their primary keys."""
        t = self.table
        wanted = list(dict.fromkeys(external_ids))
        if not wanted:
            return {}
        stmt = (
            delete(t)
            .where(t.c.tenant_id == tenant, any_of(t.c.external_id, wanted))
            .returning(t.c.external_id, t.c.id)
        )
        async with self.engine.begin() as conn:
            return {r.external_id: r.id for r in (await conn.execute(stmt)).all()}

    async def count(self, tenant: str) -> int:
        t = self.table
        stmt = select(func.count()).select_from(t).where(t.c.tenant_id == tenant)
        async with self.engine.connect() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def page(
        self,
        tenant: str,
        limit: int,
        after_pk: int | None = None,
        conditions: Sequence[ColumnElement[bool]] = (),
    ) -> list[R]:
        """Rows in insertion order, ``limit`` of them after ``after_pk`` (keyset paging)."""
        t = self.table
        stmt = select(*self.columns).where(t.c.tenant_id == tenant, *conditions)
        if after_pk is not None:
            stmt = stmt.where(t.c.id > after_pk)
        stmt = stmt.order_by(t.c.id).limit(limit)
        async with self.engine.connect() as conn:
            return [self.record(r) for r in (await conn.execute(stmt)).all()]

    async def iterate(self, tenant: str, batch: int = 5000) -> AsyncIterator[R]:
        """All rows in insertion order, a batch at a time (for export)."""
        after: int | None = None
        while True:
            page = await self.page(tenant, batch, after)
            if not page:
                return
            for rec in page:
                yield rec
            after = page[-1].pk
