"""An in-memory copy of each tenant's catalogue, so a typical request needs no database
round trip for its items: the records a response shows, the ids a request names, and the
visible items a recommendation may choose from.

Freshness: a write applies its changes to this process's copy before it is acknowledged,
and publishes the changed primary keys on ``catalog``; every other process (worker or
replica) then reloads exactly those rows. A snapshot older than ``max_age`` seconds is
rebuilt anyway, so a lost message cannot leave a process stale for long. Catalogues larger
than ``max_items`` are not copied (callers fall back to SQL).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import func, select

from storage.backends import CacheBackend, SlowConsumer
from storage.records import ItemRecord
from storage.repositories.items import ItemRepository
from storage.result_cache import ResultCache
from storage.tables import ITEMS
from storage.tasks import stop_task
from storage.tenancy import tenant_scope

log = logging.getLogger(__name__)
CHANNEL = "catalog"
#: changes listed by primary key in one message; beyond, the message says "reload"
MAX_LISTED = 500


@dataclass
class Snapshot:
    records: dict[int, ItemRecord] = field(default_factory=dict)
    by_external: dict[str, int] = field(default_factory=dict)
    built: float = field(default_factory=time.monotonic)
    _visible: np.ndarray | None = None

    def apply(self, records: Iterable[ItemRecord], deleted: Iterable[int] = ()) -> None:
        for rec in records:
            self.records[rec.pk] = rec
            self.by_external[rec.external_id] = rec.pk
        for pk in deleted:
            gone = self.records.pop(pk, None)
            if gone is not None:
                self.by_external.pop(gone.external_id, None)
        self._visible = None

    def visible(self) -> np.ndarray:
        """Sorted pks of the items that are not hidden."""
        if self._visible is None:
            pks = [pk for pk, rec in self.records.items() if not rec.hidden]
            self._visible = np.sort(np.fromiter(pks, np.int64, len(pks)))
        return self._visible


class CatalogSnapshots:
    def __init__(
        self,
        items: ItemRepository,
        cache: CacheBackend,
        max_items: int = 200_000,
        max_age: float = 300.0,
        results: ResultCache | None = None,
    ) -> None:
        self.items = items
        self.cache = cache
        self.max_items = max_items
        self.max_age = max_age
        self._snapshots: dict[str, Snapshot | None] = {}
        self._building: dict[str, asyncio.Future[Snapshot | None]] = {}
        self._follower: asyncio.Task[None] | None = None
        self._rebuilds: set[asyncio.Task[None]] = set()
        #: pks changed while a tenant's copy is being built (None: reload it all)
        self._dirty: dict[str, set[int] | None] = {}
        self.origin = uuid.uuid4().hex  # tells this process's own messages apart
        #: cached recommendations depend on the catalogue: told of every change
        self.results = results or ResultCache(0)
        #: called with the tenant once a change of its catalogue (here or in another
        #: process) is visible here
        self.listeners: list[Callable[[str], None]] = []
        #: called with the tenant after this process changed its catalogue
        self.local_listeners: list[Callable[[str], None]] = []

    async def records(self, tenant: str, pks: Iterable[int]) -> dict[int, ItemRecord]:
        """Items by primary key: from the copy, the database for what it lacks."""
        wanted = list(dict.fromkeys(pks))
        snap = await self.get(tenant)
        if snap is None:
            return await self.items.by_pks(tenant, wanted)
        found = {pk: snap.records[pk] for pk in wanted if pk in snap.records}
        if len(found) < len(wanted):
            found |= await self.items.by_pks(tenant, [pk for pk in wanted if pk not in found])
        return found

    async def by_external_ids(self, tenant: str, ids: Iterable[str]) -> dict[str, ItemRecord]:
        wanted = list(dict.fromkeys(ids))
        snap = await self.get(tenant)
        if snap is None:
            return await self.items.by_external_ids(tenant, wanted)
        out = {}
        for ext in wanted:
            pk = snap.by_external.get(ext)
            if pk is not None:
                out[ext] = snap.records[pk]
        return out

    async def pks(self, tenant: str, ids: Iterable[str]) -> dict[str, int]:
        wanted = list(dict.fromkeys(ids))
        snap = await self.get(tenant)
        if snap is None:
            return await self.items.pks(tenant, wanted)
        return {ext: snap.by_external[ext] for ext in wanted if ext in snap.by_external}

    async def get(self, tenant: str) -> Snapshot | None:
        """The tenant's snapshot (built once, by one caller, while others wait), or None
        when the catalogue is too large to copy. An old copy keeps serving while its
        replacement is built in the background (changes keep reaching it meanwhile)."""
        if tenant in self._snapshots:
            snap = self._snapshots[tenant]
            old = snap is not None and time.monotonic() - snap.built >= self.max_age
            if old and tenant not in self._building:
                task = asyncio.create_task(self._refresh(tenant), name="catalog-rebuild")
                self._rebuilds.add(task)
                task.add_done_callback(self._rebuilds.discard)
            return snap
        pending = self._building.get(tenant)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._rebuild(tenant)

    async def _refresh(self, tenant: str) -> None:
        try:
            await self._rebuild(tenant)
        except Exception:  # the old copy keeps serving; the next request tries again
            log.warning("could not refresh the catalogue copy of %s", tenant, exc_info=True)

    async def _rebuild(self, tenant: str) -> Snapshot | None:
        future: asyncio.Future[Snapshot | None] = asyncio.get_running_loop().create_future()
        self._building[tenant] = future
        try:
            built = await self._build_current(tenant)
            self._snapshots[tenant] = built  # no await since the last catch-up: nothing missed
            future.set_result(built)
            return built
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it, nobody logs it twice
            raise
        finally:
            self._building.pop(tenant, None)

    async def _build_current(self, tenant: str) -> Snapshot | None:
        """A copy that includes every change made while it was being read: the items
        changed meanwhile (by this process or, over pub/sub, by others) are read again
        until none is left; a reload requested meanwhile starts over (at most twice)."""
        try:
            for _ in range(3):
                self._dirty[tenant] = set()
                built = await self._build(tenant)
                while built is not None:
                    changed = self._dirty[tenant]
                    if changed is None or not changed:
                        break
                    self._dirty[tenant] = set()
                    with tenant_scope(tenant):
                        fresh = await self.items.by_pks(tenant, list(changed))
                    built.apply(fresh.values(), changed - set(fresh))
                if self._dirty[tenant] is not None:
                    return built
            return built
        finally:
            self._dirty.pop(tenant, None)

    def _touched(self, tenant: str, pks: Iterable[int] | None) -> None:
        """Note changes for a copy being built (None: everything, reload)."""
        if tenant in self._dirty:
            known = self._dirty[tenant]
            if pks is None or known is None:
                self._dirty[tenant] = None
            else:
                known.update(pks)

    async def _build(self, tenant: str) -> Snapshot | None:
        with tenant_scope(tenant):
            async with self.items.engine.connect() as conn:
                count = (
                    await conn.execute(
                        select(func.count()).select_from(ITEMS).where(ITEMS.c.tenant_id == tenant)
                    )
                ).scalar_one()
            if count > self.max_items:
                return None
            snap = Snapshot()
            after: int | None = None
            while True:
                # small pages: the loop serves requests between them
                page = await self.items.page(tenant, 2_000, after)
                if not page:
                    break
                snap.apply(page)
                after = page[-1].pk
        snap.built = time.monotonic()
        return snap

    # --- changes -------------------------------------------------------------------------
    async def changed(
        self, tenant: str, records: Sequence[ItemRecord], deleted: Sequence[int] = ()
    ) -> None:
        """Writes call this: apply here at once, then tell every other process."""
        snap = self._snapshots.get(tenant)
        if snap is not None:
            snap.apply(records, deleted)
        pks = [r.pk for r in records]
        self._touched(tenant, [*pks, *deleted])
        await self.results.catalogue_changed(tenant, local=True)
        self._tell(tenant, local=True)
        message: dict[str, object] = {"tenant": tenant, "origin": self.origin}
        if len(pks) + len(deleted) <= MAX_LISTED:
            message |= {"upserted": pks, "deleted": list(deleted)}
        await self.cache.publish(CHANNEL, json.dumps(message).encode())

    async def reload(self, tenant: str) -> None:
        """Drop the tenant's copy here and everywhere (after changes not listed by pk)."""
        self.forget(tenant)
        await self.results.catalogue_changed(tenant, local=True)
        self._tell(tenant, local=True)
        message = {"tenant": tenant, "origin": self.origin}
        await self.cache.publish(CHANNEL, json.dumps(message).encode())

    def forget(self, tenant: str | None = None) -> None:
        if tenant is None:
            self._snapshots.clear()
            for building in list(self._dirty):
                self._touched(building, None)
        else:
            self._snapshots.pop(tenant, None)
            self._touched(tenant, None)

    async def _apply_message(self, raw: bytes) -> None:
        msg = json.loads(raw)
        tenant = msg["tenant"]
        if msg.get("origin") == self.origin:
            return
        try:
            await self._apply(tenant, msg)
        finally:
            # only once this process sees the change: what it computes from now on holds it
            await self.results.catalogue_changed(tenant, local=False)
            self._tell(tenant)

    def _tell(self, tenant: str, local: bool = False) -> None:
        for listener in [*self.listeners, *(self.local_listeners if local else ())]:
            listener(tenant)

    async def _apply(self, tenant: str, msg: dict[str, Any]) -> None:
        if "upserted" in msg:
            self._touched(tenant, [*msg["upserted"], *msg["deleted"]])
        if tenant not in self._snapshots:
            if "upserted" not in msg:
                self._touched(tenant, None)
            return
        snap = self._snapshots[tenant]
        if snap is None or "upserted" not in msg:
            self.forget(tenant)
            return
        with tenant_scope(tenant):
            fresh = await self.items.by_pks(tenant, msg["upserted"])
        gone = set(msg["deleted"]) | (set(msg["upserted"]) - set(fresh))
        snap.apply(fresh.values(), gone)

    def follow(self) -> None:
        """Start applying other processes' changes (once per process)."""
        if self._follower is None or self._follower.done():
            self._follower = asyncio.create_task(self._follow(), name="catalog-snapshots")

    async def _follow(self) -> None:
        while True:
            try:
                async for raw in self.cache.subscribe(CHANNEL):
                    try:
                        await self._apply_message(raw)
                    except Exception:
                        log.exception("could not apply a catalogue change")
                        self.forget()
            except SlowConsumer:
                self.forget()  # changes were missed: rebuild from the database
                self.results.missed_changes()

    async def stop(self) -> None:
        await stop_task(self._follower)
