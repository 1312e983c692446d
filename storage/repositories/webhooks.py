"""Webhooks and their outbox: each change that a webhook asked for becomes a row of
``webhook_deliveries`` in the transaction of the change itself, so no message is lost across
a crash; the delivery worker (``gql.server.webhooks``) claims due rows with ``FOR UPDATE
SKIP LOCKED``, sends them and records the outcome here.

The active webhooks of each tenant are cached for a few seconds, and forgotten at once on
every replica when one changes (``WEBHOOKS_CHANNEL``), so a tenant without webhooks pays a
dictionary lookup per write."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cachetools import TTLCache
from sqlalchemy import Row, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.backends import CacheBackend, forget_on_messages
from storage.tables import WEBHOOK_DELIVERIES as D
from storage.tables import WEBHOOKS as W
from storage.tenancy import tenant_scope

log = logging.getLogger(__name__)

EVENTS_RECORDED = "events.recorded"
MODEL_TRAINED = "model.trained"
RECOMMENDATIONS_CHANGED = "recommendations.changed"
KINDS = (EVENTS_RECORDED, MODEL_TRAINED, RECOMMENDATIONS_CHANGED)
STATUSES = ("pending", "delivered", "dead")
#: events in one ``events.recorded`` delivery; a bigger batch is split into several
EVENTS_PER_DELIVERY = 1000
#: pub/sub: a tenant's webhooks changed (every replica forgets its cached list)
WEBHOOKS_CHANNEL = "webhooks"
#: pub/sub: deliveries were written (the workers look for due rows now)
DUE_CHANNEL = "webhooks:due"
#: how long a tenant's active webhooks are cached
CACHE_SECONDS = 5.0
#: longest ``last_error`` kept
MAX_ERROR = 500

INSERT_DELIVERIES = text(
    "INSERT INTO webhook_deliveries (tenant_id, webhook_id, kind, payload) "
    "SELECT w.tenant_id, w.id, CAST(:kind AS text), CAST(p.body AS jsonb) "
    "FROM webhooks w CROSS JOIN unnest(CAST(:bodies AS text[])) WITH ORDINALITY AS p(body, n) "
    "WHERE w.tenant_id = :tenant AND w.active "
    "AND (CAST(:ids AS bigint[]) IS NULL OR w.id = ANY(CAST(:ids AS bigint[]))) "
    "AND CAST(:kind AS text) = ANY(w.kinds) "
    "AND (CAST(:user AS text) IS NULL OR CAST(:user AS text) = ANY(w.watch_user_ids)) "
    # a webhook deleted meanwhile is skipped instead of failing the change's transaction
    "ORDER BY w.id, p.n FOR KEY SHARE OF w"
)
#: the watched user's previous list (locked) and whether the new one replaced it
REMEMBER_LIST = text(
    "WITH old AS (SELECT item_ids FROM watched_lists WHERE tenant_id = :tenant "
    "AND user_id = :user FOR UPDATE), "
    "up AS (INSERT INTO watched_lists (tenant_id, user_id, item_ids) "
    "VALUES (:tenant, :user, CAST(:items AS text[])) "
    "ON CONFLICT (tenant_id, user_id) DO UPDATE SET item_ids = excluded.item_ids, "
    "updated_at = now() WHERE watched_lists.item_ids IS DISTINCT FROM excluded.item_ids "
    "RETURNING 1) "
    "SELECT (SELECT item_ids FROM old) AS previous, EXISTS (SELECT 1 FROM up) AS changed"
)
ERASE_USERS = (
    text("DELETE FROM watched_lists WHERE tenant_id = :t AND user_id = ANY(:users)"),
    text(
        "DELETE FROM webhook_deliveries WHERE tenant_id = :t "
        "AND kind = 'recommendations.changed' AND payload->>'userId' = ANY(:users)"
    ),
    text(
        "UPDATE webhook_deliveries SET payload = jsonb_set(payload, '{events}', "
        "(SELECT coalesce(jsonb_agg(e ORDER BY n), '[]'::jsonb) FROM "
        "jsonb_array_elements(payload->'events') WITH ORDINALITY AS x(e, n) "
        "WHERE NOT (e->>'userId' = ANY(:users)))) "
        "WHERE tenant_id = :t AND kind = 'events.recorded' AND EXISTS (SELECT 1 FROM "
        "jsonb_array_elements(payload->'events') e WHERE e->>'userId' = ANY(:users))"
    ),
    text(
        "DELETE FROM webhook_deliveries WHERE tenant_id = :t AND kind = 'events.recorded' "
        "AND payload->'events' = '[]'::jsonb"
    ),
)
PRUNE = text(
    "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries "
    "WHERE status <> 'pending' "
    "AND created_at < now() - CAST(:days AS float8) * interval '1 day' "
    "ORDER BY id LIMIT :batch)"
)
CLAIM = text(
    "WITH due AS (SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id "
    "WHERE d.status = 'pending' AND d.next_attempt_at <= now() AND w.active "
    "ORDER BY d.next_attempt_at, d.id LIMIT :n FOR UPDATE OF d SKIP LOCKED) "
    "UPDATE webhook_deliveries d SET attempts = d.attempts + 1, "
    "next_attempt_at = now() + make_interval(secs => :lease) "
    "FROM due, webhooks w WHERE d.id = due.id AND w.id = d.webhook_id "
    "RETURNING d.id, d.tenant_id, d.webhook_id, d.kind, d.payload, d.attempts, d.created_at, "
    "w.url, w.secret"
)


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    id: int
    tenant: str
    url: str
    kinds: tuple[str, ...]
    secret: str
    watch_user_ids: tuple[str, ...]
    active: bool
    description: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: int
    tenant: str
    webhook_id: int
    kind: str
    payload: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed by a worker (its attempt already counted), with where to send it."""

    id: int
    tenant: str
    webhook_id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    created_at: datetime
    url: str
    secret: str


def _webhook(r: Row[Any]) -> WebhookRecord:
    m = r._mapping
    return WebhookRecord(
        m["id"],
        m["tenant_id"],
        m["url"],
        tuple(m["kinds"]),
        m["secret"],
        tuple(m["watch_user_ids"]),
        m["active"],
        m["description"],
        m["created_at"],
        m["updated_at"],
    )


def _delivery(r: Row[Any]) -> DeliveryRecord:
    m = r._mapping
    return DeliveryRecord(
        m["id"],
        m["tenant_id"],
        m["webhook_id"],
        m["kind"],
        m["payload"],
        m["status"],
        m["attempts"],
        m["next_attempt_at"],
        m["last_status"],
        m["last_error"],
        m["created_at"],
        m["delivered_at"],
    )


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


class WebhookRepository:
    def __init__(
        self, engine: AsyncEngine, cache: CacheBackend, cache_seconds: float = CACHE_SECONDS
    ) -> None:
        self.engine = engine
        self.cache = cache
        self._active: TTLCache[str, tuple[WebhookRecord, ...]] = TTLCache(10_000, cache_seconds)
        #: bumped by every forget, so a list read before a change is not cached after it
        self._generation = 0
        #: called with the tenant after this process changed its webhooks
        self.listeners: list[Callable[[str], None]] = []

    # --- the tenant's webhooks ---------------------------------------------------------
    async def create(
        self,
        tenant: str,
        url: str,
        kinds: Sequence[str],
        watch_user_ids: Sequence[str] = (),
        description: str | None = None,
        limit: int | None = None,
    ) -> WebhookRecord | None:
        """A new active webhook with a fresh signing secret (``record.secret``); None when
        the tenant already has ``limit`` webhooks (counted under a lock of the tenant's
        webhooks, so concurrent creations cannot pass it together)."""
        stmt = (
            W.insert()
            .values(
                tenant_id=tenant,
                url=url,
                kinds=_kinds(kinds),
                secret=new_secret(),
                watch_user_ids=list(dict.fromkeys(watch_user_ids)),
                description=description,
            )
            .returning(*W.c)
        )
        async with self.engine.begin() as conn:
            if limit is not None:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext('webhooks:' || :t))"),
                    {"t": tenant},
                )
                count = select(func.count()).select_from(W).where(W.c.tenant_id == tenant)
                if (await conn.execute(count)).scalar_one() >= limit:
                    return None
            row = (await conn.execute(stmt)).one()
        await self.changed(tenant)
        return _webhook(row)

    async def update(self, tenant: str, webhook_id: int, **changes: Any) -> WebhookRecord | None:
        """Change some of ``url``, ``kinds``, ``watch_user_ids``, ``active``,
        ``description``; None when the tenant has no such webhook."""
        allowed = {"url", "kinds", "watch_user_ids", "active", "description"}
        if unknown := set(changes) - allowed:
            raise ValueError(f"cannot change {', '.join(sorted(unknown))}")
        if "kinds" in changes:
            changes["kinds"] = _kinds(changes["kinds"])
        if "watch_user_ids" in changes:
            changes["watch_user_ids"] = list(dict.fromkeys(changes["watch_user_ids"]))
        stmt = (
            W.update()
            .where(W.c.tenant_id == tenant, W.c.id == webhook_id)
            .values(**changes, updated_at=func.now())
            .returning(*W.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        await self.changed(tenant)
        if changes.get("active"):
            await self.wake()  # deliveries held while it was paused may go now
        return _webhook(row)

    async def delete(self, tenant: str, webhook_id: int) -> bool:
        """Delete a webhook and its deliveries."""
        stmt = W.delete().where(W.c.tenant_id == tenant, W.c.id == webhook_id).returning(W.c.id)
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return False
        await self.changed(tenant)
        return True

    async def get(self, tenant: str, webhook_id: int) -> WebhookRecord | None:
        stmt = select(W).where(W.c.tenant_id == tenant, W.c.id == webhook_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _webhook(row) if row is not None else None

    async def for_tenant(self, tenant: str) -> list[WebhookRecord]:
        stmt = select(W).where(W.c.tenant_id == tenant).order_by(W.c.id)
        async with self.engine.connect() as conn:
            return [_webhook(r) for r in (await conn.execute(stmt)).all()]

    # --- which webhooks want a change (cached) --------------------------------------------
    async def active(self, tenant: str) -> tuple[WebhookRecord, ...]:
        """The tenant's active webhooks, cached for a few seconds."""
        hit = self._active.get(tenant)
        if hit is not None:
            return hit
        generation = self._generation
        stmt = select(W).where(W.c.tenant_id == tenant, W.c.active).order_by(W.c.id)
        async with self.engine.connect() as conn:
            found = tuple(_webhook(r) for r in (await conn.execute(stmt)).all())
        if generation == self._generation:
            self._active[tenant] = found
        return found

    async def subscribed(self, tenant: str, kind: str, user_id: str | None = None) -> list[int]:
        """Ids of the tenant's active webhooks for ``kind`` (for ``recommendations.changed``:
        those watching ``user_id``). Usually no query at all."""
        return [
            w.id
            for w in await self.active(tenant)
            if kind in w.kinds and (kind != RECOMMENDATIONS_CHANGED or user_id in w.watch_user_ids)
        ]

    async def watched_users(self, tenant: str) -> set[str]:
        """The users whose ``recommendations.changed`` some active webhook wants (cached):
        change detection need look at these users only."""
        return {
            u
            for w in await self.active(tenant)
            if RECOMMENDATIONS_CHANGED in w.kinds
            for u in w.watch_user_ids
        }

    def forget(self, tenant: str | None = None) -> None:
        """Drop cached webhook lists (one tenant's, or all)."""
        self._generation += 1
        if tenant is None:
            self._active.clear()
        else:
            self._active.pop(tenant, None)

    async def changed(self, tenant: str) -> None:
        """A tenant's webhooks changed: forget them here and on every replica."""
        self.forget(tenant)
        await self.cache.publish(WEBHOOKS_CHANNEL, json.dumps({"tenant": tenant}).encode())
        for listener in self.listeners:
            listener(tenant)

    async def follow_changes(self) -> None:
        """Forget a tenant's cached copies whenever another process changes them."""
        await forget_on_messages(self.cache, WEBHOOKS_CHANNEL, self.forget)

    async def write(
        self,
        conn: AsyncConnection,
        tenant: str,
        kind: str,
        payloads: Sequence[dict[str, Any]],
        webhook_ids: Iterable[int] | None,
        user_id: str | None = None,
    ) -> int:
        """Write one delivery of each payload for each of ``webhook_ids`` (None: every
        webhook of the tenant) that is active and subscribed to ``kind`` (and, for
        ``recommendations.changed``, watches ``user_id``), inside the caller's transaction
        ``conn``; the count written. Call ``wake()`` after the commit."""
        ids = None if webhook_ids is None else list(webhook_ids)
        if ids == [] or not payloads:
            return 0
        if kind not in KINDS:
            raise ValueError(f"unknown webhook kind {kind!r}")
        bodies = [json.dumps(p, separators=(",", ":"), default=str) for p in payloads]
        result = await conn.execute(
            INSERT_DELIVERIES,
            {"kind": kind, "bodies": bodies, "tenant": tenant, "ids": ids, "user": user_id},
        )
        return int(result.rowcount or 0)

    async def enqueue(
        self,
        tenant: str,
        kind: str,
        payload: dict[str, Any],
        *,
        conn: AsyncConnection | None = None,
        user_id: str | None = None,
    ) -> int:
        """Queue ``payload`` (a JSON object: the delivery's ``data``) for every active webhook
        of the tenant subscribed to ``kind``; for ``recommendations.changed`` only those
        whose ``watchUserIds`` contain ``user_id``. Returns the deliveries written.

        With ``conn`` the rows are written in that transaction (they exist exactly if it
        commits); call ``await store.webhooks.wake()`` after the commit for prompt
        delivery (otherwise the workers find them at their next poll, within a second).
        Without ``conn`` they are written and committed here, and the workers woken."""
        if kind == RECOMMENDATIONS_CHANGED and user_id is None:
            raise ValueError("recommendations.changed needs the user_id it is about")
        ids = await self.subscribed(tenant, kind, user_id)
        if not ids:
            return 0
        if conn is not None:
            return await self.write(conn, tenant, kind, [payload], ids, user_id)
        async with self.engine.begin() as own:
            written = await self.write(own, tenant, kind, [payload], ids, user_id)
        if written:
            await self.wake()
        return written

    async def list_changed(
        self, tenant: str, user_id: str, item_ids: list[str], cause: str
    ) -> bool:
        """Remember ``item_ids`` as the watched user's list. If a different list was
        remembered, queue ``recommendations.changed`` in the same transaction and return
        True; the first list of a user is only remembered. Two processes noticing the same
        change queue it once (the row is locked and compared)."""
        ids = await self.subscribed(tenant, RECOMMENDATIONS_CHANGED, user_id)
        if not ids:
            return False
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    REMEMBER_LIST, {"tenant": tenant, "user": user_id, "items": item_ids}
                )
            ).one()
            if not row.changed or row.previous is None:
                return False
            payload = {
                "userId": user_id,
                "cause": cause,
                "recommendations": item_ids,
                "previous": list(row.previous),
            }
            written = await self.write(
                conn, tenant, RECOMMENDATIONS_CHANGED, [payload], ids, user_id
            )
        if written:
            await self.wake()
        return written > 0

    async def prune(self, older_than_days: float, batch: int = 10_000) -> int:
        """Delete finished (delivered or dead) deliveries of every tenant created more than
        ``older_than_days`` ago, a batch at a time so no statement holds locks for long;
        the count deleted."""
        deleted = 0
        while True:
            with tenant_scope(None):
                async with self.engine.begin() as conn:
                    result = await conn.execute(PRUNE, {"days": older_than_days, "batch": batch})
            deleted += int(result.rowcount or 0)
            if (result.rowcount or 0) < batch:
                return deleted

    async def forget_users(self, tenant: str, user_ids: Sequence[str]) -> None:
        """Erase deleted users from what webhooks keep: their remembered lists, their
        ``recommendations.changed`` deliveries, and their events inside ``events.recorded``
        deliveries (a delivery left without events is deleted)."""
        if not user_ids:
            return
        users = list(user_ids)
        async with self.engine.begin() as conn:
            for statement in ERASE_USERS:
                await conn.execute(statement, {"t": tenant, "users": users})

    async def wake(self) -> None:
        """Tell the delivery workers of every process that deliveries are due."""
        await self.cache.publish(DUE_CHANNEL, b"1")

    # --- the delivery worker's side (every tenant: the service's own role) ------------------
    async def claim(self, limit: int, lease_seconds: float) -> list[DueDelivery]:
        """Up to ``limit`` due deliveries of active webhooks, oldest first, their attempt
        counted and hidden from other workers for ``lease_seconds`` (a worker that dies
        mid-attempt leaves them to be retried once the lease runs out)."""
        with tenant_scope(None):
            async with self.engine.begin() as conn:
                rows = (await conn.execute(CLAIM, {"n": limit, "lease": lease_seconds})).all()
        return [
            DueDelivery(
                r.id,
                r.tenant_id,
                r.webhook_id,
                r.kind,
                r.payload,
                r.attempts,
                r.created_at,
                r.url,
                r.secret,
            )
            for r in sorted(rows, key=lambda r: r.id)
        ]

    async def finish(
        self,
        delivery: DueDelivery,
        *,
        delivered: bool,
        http_status: int | None,
        error: str | None,
        retry_in: float | None,
    ) -> str:
        """Record an attempt: delivered, to be retried in ``retry_in`` seconds, or (``retry_in``
        None) dead. Returns the new status; ``superseded`` when the attempt's claim was taken
        over (its lease ran out) or the webhook deleted, which changes nothing."""
        status = "delivered" if delivered else ("pending" if retry_in is not None else "dead")
        values: dict[str, Any] = {
            "status": status,
            "last_status": http_status,
            "last_error": None if error is None else error[:MAX_ERROR],
        }
        if delivered:
            values["delivered_at"] = func.now()
        elif retry_in is not None:
            values["next_attempt_at"] = func.now() + timedelta(seconds=retry_in)
        stmt = (
            D.update()
            .where(
                D.c.id == delivery.id,
                D.c.attempts == delivery.attempts,
                D.c.status == "pending",
            )
            .values(**values)
        )
        with tenant_scope(None):
            async with self.engine.begin() as conn:
                changed = (await conn.execute(stmt)).rowcount
        return status if changed else "superseded"

    # --- the delivery log -------------------------------------------------------------------
    async def deliveries(
        self,
        tenant: str,
        *,
        webhook_id: int | None = None,
        status: str | None = None,
        limit: int = 20,
        before_id: int | None = None,
    ) -> list[DeliveryRecord]:
        """The tenant's deliveries, newest first (keyset paging by id)."""
        stmt = select(D).where(D.c.tenant_id == tenant)
        if webhook_id is not None:
            stmt = stmt.where(D.c.webhook_id == webhook_id)
        if status is not None:
            stmt = stmt.where(D.c.status == status)
        if before_id is not None:
            stmt = stmt.where(D.c.id < before_id)
        stmt = stmt.order_by(D.c.id.desc()).limit(limit)
        async with self.engine.connect() as conn:
            return [_delivery(r) for r in (await conn.execute(stmt)).all()]

    async def delivery(self, tenant: str, delivery_id: int) -> DeliveryRecord | None:
        stmt = select(D).where(D.c.tenant_id == tenant, D.c.id == delivery_id)
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _delivery(row) if row is not None else None

    async def replay(self, tenant: str, delivery_id: int) -> DeliveryRecord | None:
        """Queue a dead or delivered delivery again, as new (attempts reset); None when the
        tenant has no such delivery or it is still pending."""
        stmt = (
            D.update()
            .where(
                D.c.tenant_id == tenant,
                D.c.id == delivery_id,
                D.c.status.in_(("dead", "delivered")),
            )
            .values(
                status="pending",
                attempts=0,
                next_attempt_at=func.now(),
                last_status=None,
                last_error=None,
                delivered_at=None,
            )
            .returning(*D.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            return None
        await self.wake()
        return _delivery(row)


def _kinds(kinds: Iterable[str]) -> list[str]:
    out = list(dict.fromkeys(kinds))
    if unknown := [k for k in out if k not in KINDS]:
        raise ValueError(f"unknown webhook kinds: {', '.join(unknown)}")
    return out
