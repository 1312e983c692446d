"""Recording interaction events: validation, weights, idempotency and live fan-out."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from engines.algorithm import RecordedEvent
from engines.errors import ErrorCode, InputError
from storage.backends import CacheBackend
from storage.online_state import OnlineState
from storage.repositories import (
    InteractionRepository,
    InteractionTypeRepository,
    ItemRepository,
    UserRepository,
)
from storage.repositories.placements import PlacementRepository
from storage.repositories.webhooks import (
    EVENTS_PER_DELIVERY,
    EVENTS_RECORDED,
    WebhookRepository,
)
from storage.result_cache import ResultCache
from storage.snapshot import CatalogSnapshots
from storage.tenancy import tenant_scope
from storage.validation import (
    Limits,
    Path,
    check_batch,
    check_finite,
    check_id,
    check_json_object,
    check_timestamp,
    utcnow,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EventInput:
    user_id: str
    item_id: str
    type: str
    weight: float | None = None
    value: float | None = None
    timestamp: datetime | None = None
    metadata: dict[str, Any] | None = None
    idempotency_key: str | None = None
    #: the served list (``recommendationId``) this event answers
    recommendation_id: str | None = None


@dataclass(slots=True)
class RecordResult:
    recorded: int = 0
    duplicates: int = 0
    errors: list[InputError] = field(default_factory=list)
    #: indexes of the events that were stored
    stored: list[int] = field(default_factory=list)


#: concurrent single events of a tenant written together, at most this many per transaction
SINGLES_PER_COMMIT = 500
#: a single event waiting for its group's commit, and where its caller awaits the result
Waiting = tuple[EventInput, asyncio.Future[RecordResult]]


def events_channel(tenant: str) -> str:
    return f"events:{tenant}"


#: events per published message (a PostgreSQL NOTIFY carries at most 8,000 bytes)
EVENTS_PER_MESSAGE = 30


def encode_events(rows: Sequence[RecordedEvent]) -> bytes:
    return json.dumps(
        [
            [e.user, e.item, e.user_pk, e.item_pk, e.type, e.weight, e.value, e.timestamp]
            for e in rows
        ],
        separators=(",", ":"),
    ).encode()


def decode_events(raw: bytes | str) -> list[RecordedEvent]:
    """The events of one message on ``events_channel`` (see ``EventRecorder._announce``)."""
    return [
        RecordedEvent(str(u), str(i), int(up), int(ip), str(t), float(w), v, float(ts))
        for u, i, up, ip, t, w, v, ts in json.loads(raw)
    ]


def webhook_payloads(
    events: Sequence[EventInput], rows: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The ``data`` of the ``events.recorded`` deliveries of stored events, at most
    ``EVENTS_PER_DELIVERY`` events each."""
    out = [
        {
            "userId": e.user_id,
            "itemId": e.item_id,
            "type": e.type,
            "weight": float(row["weight"]),
            "value": e.value,
            "timestamp": row["occurred_at"].isoformat(),
            "metadata": e.metadata or {},
            "idempotencyKey": e.idempotency_key,
        }
        for e, row in zip(events, rows, strict=True)
    ]
    return [
        {"events": out[start : start + EVENTS_PER_DELIVERY]}
        for start in range(0, len(out), EVENTS_PER_DELIVERY)
    ]


class EventRecorder:
    def __init__(
        self,
        users: UserRepository,
        items: ItemRepository,
        snapshots: CatalogSnapshots,
        interactions: InteractionRepository,
        types: InteractionTypeRepository,
        cache: CacheBackend,
        limits: Limits,
        *,
        auto_create_items: bool = False,
        webhooks: WebhookRepository | None = None,
        results: ResultCache | None = None,
        online: OnlineState | None = None,
        placements: PlacementRepository | None = None,
    ) -> None:
        self.users = users
        self.items = items
        self.snapshots = snapshots
        self.interactions = interactions
        self.types = types
        self.cache = cache
        self.limits = limits
        self.auto_create_items = auto_create_items
        #: ``events.recorded`` deliveries are written in the events' transaction
        self.webhooks = webhooks
        self._singles: dict[str, list[Waiting]] = {}
        self._writing: set[str] = set()
        self._flushes: set[asyncio.Task[None]] = set()
        #: cached recommendations of a user stop being served once their events are stored
        self.results = results or ResultCache(0)
        #: shared online state (histories, trending, pairs), updated before a write returns
        self.online = online or OnlineState()
        #: checks that a recommendationId naming an experiment's list was served to the user
        self.placements = placements
        #: called with the tenant and the events this process stored, after they are stored
        self.listeners: list[Callable[[str, list[RecordedEvent]], None]] = []

    def _check(self, e: EventInput, p: Path, now: datetime) -> InputError | None:
        lim = self.limits
        checks = (
            check_id(e.user_id, (*p, "userId"), lim),
            check_id(e.item_id, (*p, "itemId"), lim),
            check_id(e.type, (*p, "type"), lim),
            check_finite(e.weight, (*p, "weight")),
            check_finite(e.value, (*p, "value")),
            check_timestamp(e.timestamp, (*p, "timestamp"), lim, now),
            check_json_object(e.metadata, (*p, "metadata"), lim) if e.metadata else None,
            check_id(e.idempotency_key, (*p, "idempotencyKey"), lim)
            if e.idempotency_key is not None
            else None,
            check_id(e.recommendation_id, (*p, "recommendationId"), lim)
            if e.recommendation_id is not None
            else None,
        )
        return next((c for c in checks if c is not None), None)

    async def _attributable(
        self, tenant: str, ok: list[tuple[int, EventInput]], path: Path, result: RecordResult
    ) -> list[tuple[int, EventInput]]:
        """``ok``, where an event names an experiment's list that was not served to its
        user, without that name (reported): the event is kept, but made-up ids must not
        move an experiment's numbers."""
        named = [(i, e) for i, e in ok if e.recommendation_id is not None]
        if self.placements is None or not named:
            return ok
        pairs = [(e.recommendation_id or "", e.user_id) for _, e in named]
        bad = {named[n][0] for n in await self.placements.unserved(tenant, pairs)}
        for i in sorted(bad):
            result.errors.append(
                InputError(
                    (*path, str(i), "recommendationId"),
                    "not a list served to this userId: the event was recorded without it; "
                    "send the recommendationId of the recommendations the user was shown",
                    ErrorCode.INVALID,
                )
            )
        return [(i, replace(e, recommendation_id=None) if i in bad else e) for i, e in ok]

    async def record(self, tenant: str, events: Sequence[EventInput], path: Path) -> RecordResult:
        """Store valid events in one transaction; report invalid rows; skip known keys."""
        result = RecordResult()
        if err := check_batch(len(events), path, self.limits):
            result.errors.append(err)
            return result
        now = utcnow()
        types = await self.types.cached(tenant, names={e.type for e in events})
        ok: list[tuple[int, EventInput]] = []
        for i, e in enumerate(events):
            p = (*path, str(i))
            if err := self._check(e, p, now):
                result.errors.append(err)
            elif e.type not in types:
                known = ", ".join(sorted(types))
                result.errors.append(
                    InputError(
                        (*p, "type"),
                        f"unknown type {e.type!r}; known: {known}",
                        ErrorCode.UNKNOWN_TYPE,
                    )
                )
            elif e.value is None and types[e.type].value_based and e.weight is None:
                result.errors.append(
                    InputError((*p, "value"), f"type {e.type!r} needs a value", ErrorCode.BLANK)
                )
            else:
                ok.append((i, e))
        ok = await self._attributable(tenant, ok, path, result)
        item_pks = await self.snapshots.pks(tenant, (e.item_id for _, e in ok))
        unknown = [e.item_id for _, e in ok if e.item_id not in item_pks]
        if unknown and self.auto_create_items:
            created = await self.items.ensure_many(tenant, unknown)
            item_pks |= created
            fresh = await self.items.by_pks(tenant, created.values())
            await self.snapshots.changed(tenant, list(fresh.values()))
        rows: list[dict[str, Any]] = []
        seen_keys: set[str] = set()
        pending: list[tuple[int, EventInput]] = []
        for i, e in ok:
            if e.item_id not in item_pks:
                result.errors.append(
                    InputError(
                        (*path, str(i), "itemId"),
                        f"unknown item {e.item_id!r}",
                        ErrorCode.NOT_FOUND,
                    )
                )
            elif e.idempotency_key is not None and e.idempotency_key in seen_keys:
                result.duplicates += 1
            else:
                if e.idempotency_key is not None:
                    seen_keys.add(e.idempotency_key)
                pending.append((i, e))
        if not pending:
            return result
        hooks = await self.webhooks.subscribed(tenant, EVENTS_RECORDED) if self.webhooks else []
        queued = 0
        # new users and their events in one transaction: one commit per write, and users
        # are created only with the events that name them (and the webhooks' deliveries
        # of them: they exist exactly if the events do)
        async with self.interactions.engine.begin() as conn:
            user_pks = await self.users.ensure_many(tenant, (e.user_id for _, e in pending), conn)
            for _, e in pending:
                rows.append(
                    {
                        "user_id": user_pks[e.user_id],
                        "item_id": item_pks[e.item_id],
                        "type": e.type,
                        "weight": e.weight
                        if e.weight is not None
                        else types[e.type].weight_of(e.value),
                        "value": e.value,
                        "occurred_at": e.timestamp or now,
                        "metadata": e.metadata or {},
                        "idempotency_key": e.idempotency_key,
                        "recommendation_id": e.recommendation_id,
                    }
                )
            stored = await self.interactions.insert_many(tenant, rows, conn)
            if hooks and stored and self.webhooks is not None:
                queued = await self.webhooks.write(
                    conn,
                    tenant,
                    EVENTS_RECORDED,
                    webhook_payloads([pending[i][1] for i in stored], [rows[i] for i in stored]),
                    hooks,
                )
        if queued and self.webhooks is not None:
            await self.webhooks.wake()
        result.recorded = len(stored)
        result.stored = [pending[i][0] for i in stored]
        result.duplicates += len(rows) - len(stored)
        await self._announce(tenant, [pending[i][1] for i in stored], [rows[i] for i in stored])
        return result

    async def record_one(self, tenant: str, event: EventInput, path: Path) -> RecordResult:
        """One event, written together with the single events other requests of the tenant
        send meanwhile: one transaction and one commit for all of them (a commit each was
        the cost of a single-event write). Each caller gets its own result, errors at
        ``(*path, "0", …)`` as for a batch of one. While one group commits, the next
        gathers, so groups grow with the load and a lone event waits for nobody."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[RecordResult] = loop.create_future()
        waiting = self._singles.setdefault(tenant, [])
        waiting.append((event, future))
        if len(waiting) == 1 and tenant not in self._writing:
            loop.call_soon(self._write_singles, tenant, path)
        return await future

    def _write_singles(self, tenant: str, path: Path) -> None:
        waiting = self._singles.pop(tenant, [])
        size = max(1, min(SINGLES_PER_COMMIT, self.limits.max_batch_size))
        group, rest = waiting[:size], waiting[size:]
        if rest:
            self._singles[tenant] = rest
        if not group:
            return
        self._writing.add(tenant)
        task = asyncio.create_task(self._commit_singles(tenant, group, path))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _commit_singles(
        self,
        tenant: str,
        group: list[Waiting],
        path: Path,
    ) -> None:
        try:
            await self._write_group(tenant, group, path)
        finally:  # the next group goes once this one is done, whatever happened
            self._writing.discard(tenant)
            if self._singles.get(tenant):
                asyncio.get_running_loop().call_soon(self._write_singles, tenant, path)

    async def _write_group(
        self,
        tenant: str,
        group: list[Waiting],
        path: Path,
    ) -> None:
        try:
            with tenant_scope(tenant):
                result = await self.record(tenant, [e for e, _ in group], path)
        except Exception as exc:
            if len(group) == 1:
                if not group[0][1].done():
                    group[0][1].set_exception(exc)
                return
            # one event must not fail the others: each alone, so only it fails
            log.info(
                "a group of %d single events failed (%s); writing each alone",
                len(group),
                type(exc).__name__,
            )
            for one in group:
                await self._write_group(tenant, [one], path)
            return
        stored = set(result.stored)
        errors: dict[int, list[InputError]] = {}
        depth = len(path)
        for err in result.errors:
            n = int(err.field[depth]) if len(err.field) > depth else -1
            errors.setdefault(n, []).append(err.at(*path, "0", drop=depth + 1))
        for n, (_, future) in enumerate(group):
            if future.done():  # the caller went away meanwhile
                continue
            mine = errors.get(n, []) + errors.get(-1, [])
            recorded = n in stored
            future.set_result(
                RecordResult(
                    recorded=int(recorded),
                    duplicates=int(not recorded and not mine),
                    errors=mine,
                    stored=[0] if recorded else [],
                )
            )

    async def _announce(
        self, tenant: str, events: list[EventInput], rows: list[dict[str, Any]]
    ) -> None:
        """Publish stored events, a few per message, for subscriptions, online updates and
        other replicas (best effort: PostgreSQL stays the source of truth)."""
        recorded = [
            RecordedEvent(
                e.user_id,
                e.item_id,
                row["user_id"],
                row["item_id"],
                e.type,
                float(row["weight"]),
                e.value,
                row["occurred_at"].timestamp(),
            )
            for e, row in zip(events, rows, strict=True)
        ]
        # before the write returns: from now on no cached answer of these users is served
        await self.results.users_changed(tenant, (e.user_id for e in events), local=True)
        if not self.online.follows_stream:  # shared: updated once, by the writer
            await self.online.record(tenant, recorded)
        for listener in self.listeners:
            listener(tenant, recorded)
        channel = events_channel(tenant)
        for n, start in enumerate(range(0, len(recorded), EVENTS_PER_MESSAGE)):
            if n and n % 20 == 0:
                await asyncio.sleep(0)  # subscribers drain between slices of a big batch
            chunk = recorded[start : start + EVENTS_PER_MESSAGE]
            await self.cache.publish(channel, encode_events(chunk))
