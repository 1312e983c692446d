"""Scenarios (named, versioned placement presets) and A/B experiments over them.

Every request naming a scenario reads it, so scenarios and running experiments are cached
in each process for a few seconds and forgotten at once on every replica when one changes
(``PLACEMENTS_CHANNEL``). Served lists are counted per variant in memory and added to
``experiment_exposures`` every second (and before any read of the counts), so serving
never waits on a write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cachetools import TTLCache
from sqlalchemy import Row, Select, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from storage.backends import CacheBackend, forget_on_messages
from storage.sql import any_of
from storage.tables import EXPERIMENT_EXPOSURES as X
from storage.tables import EXPERIMENTS as E
from storage.tables import SCENARIOS as S
from storage.tenancy import tenant_scope

log = logging.getLogger(__name__)

PLACEMENTS_CHANNEL = "placements"
CACHE_SECONDS = 5.0
#: an experiment id no experiment of the tenant has (kept, so forged ids cost no reads)
MISSING = object()
#: experiment states and the moves between them
DRAFT, RUNNING, STOPPED = "draft", "running", "stopped"
MOVES = {RUNNING: (DRAFT,), STOPPED: (DRAFT, RUNNING)}


@dataclass(frozen=True, slots=True)
class ScenarioRecord:
    name: str
    version: int
    definition: dict[str, Any]
    description: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ExperimentRecord:
    id: int
    name: str
    scenario: str
    metric: str
    status: str
    variants: list[dict[str, Any]]
    click_types: list[str]
    conversion_types: list[str]
    winner: str | None
    created_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    #: signs the ids of the lists it serves; never shown
    secret: str = field(default="", repr=False)

    @property
    def prefix(self) -> str:
        """What every recommendation id this experiment served starts with."""
        return f"x{self.id}v"

    def recommendation_id(self, variant: int, user: str) -> str:
        """A new id for a list served to ``user`` by ``variant``, signed so that an event
        can name it only for that user: a client (a browser key included) cannot invent
        lists, or clicks on them, to move an experiment's numbers."""
        nonce = secrets.token_hex(8)
        return f"{self.prefix}{variant}.{nonce}{self._signature(variant, user, nonce)}"

    def served(self, recommendation_id: str, user: str) -> bool:
        """Whether ``recommendation_id`` is a list this experiment served to ``user``."""
        m = SIGNED.match(recommendation_id)
        if m is None or int(m.group(1)) != self.id or not self.secret:
            return False
        variant, nonce, signature = int(m.group(2)), m.group(3), m.group(4)
        expected = self._signature(variant, user, nonce)
        return variant < len(self.variants) and hmac.compare_digest(signature, expected)

    def _signature(self, variant: int, user: str, nonce: str) -> str:
        message = f"{variant}.{nonce}.{user}".encode()
        return hmac.new(self.secret.encode(), message, hashlib.sha256).hexdigest()[:24]


#: a recommendation id an experiment served: x<experiment>v<variant>.<token>, numbers in
#: canonical ASCII digits (``x1v01`` is not ``x1v1``; an id must fit a bigint)
SERVED_BY = re.compile(r"^x(0|[1-9][0-9]{0,17})v(0|[1-9][0-9]{0,3})\.")
#: its token: a nonce and the signature of (variant, nonce, user)
SIGNED = re.compile(SERVED_BY.pattern + r"([0-9a-f]{16})([0-9a-f]{24})$")
#: what an experiment's results count (``LIKE 'x<id>v%'``): every such id must be signed
CLAIMS = re.compile(r"^x[0-9]")


def served_by(recommendation_id: str) -> tuple[int, int] | None:
    """(experiment id, variant index) of a list an experiment served, else None."""
    m = SERVED_BY.match(recommendation_id)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _scenario(r: Row[Any]) -> ScenarioRecord:
    return ScenarioRecord(r.name, r.version, r.definition, r.description, r.created_at)


def _experiment(r: Row[Any]) -> ExperimentRecord:
    return ExperimentRecord(
        r.id,
        r.name,
        r.scenario,
        r.metric,
        r.status,
        list(r.variants),
        list(r.click_types),
        list(r.conversion_types),
        r.winner,
        r.created_at,
        r.started_at,
        r.stopped_at,
        r.secret,
    )


#: lists with at least one event of the click and of the conversion types, per variant
OUTCOMES = text(
    "SELECT split_part(substr(recommendation_id, length(:prefix) + 1), '.', 1) AS variant, "
    "count(DISTINCT recommendation_id) FILTER (WHERE type = ANY(:clicks)) AS clicks, "
    "count(DISTINCT recommendation_id) FILTER (WHERE type = ANY(:conversions)) AS conversions "
    "FROM interactions WHERE tenant_id = :tenant AND recommendation_id LIKE :pattern "
    "GROUP BY 1"
)


async def _lock_placements(conn: AsyncConnection, tenant: str) -> None:
    """Serialise starting experiments and deleting scenarios within a tenant."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('placements:' || :t))"), {"t": tenant}
    )


def _newest(tenant: str, name: str) -> Select[Any]:
    """The newest version of a scenario (a null definition: deleted)."""
    return (
        select(S)
        .where(S.c.tenant_id == tenant, S.c.name == name)
        .order_by(S.c.version.desc())
        .limit(1)
    )


async def _scenario_exists(conn: AsyncConnection, tenant: str, name: str) -> bool:
    newest = (await conn.execute(_newest(tenant, name))).first()
    return newest is not None and newest.definition is not None


class PlacementRepository:
    def __init__(self, engine: AsyncEngine, cache: CacheBackend) -> None:
        self.engine = engine
        self.cache = cache
        self._scenarios: TTLCache[tuple[str, str], ScenarioRecord | None] = TTLCache(
            10_000, CACHE_SECONDS
        )
        self._running: TTLCache[tuple[str, str], ExperimentRecord | None] = TTLCache(
            10_000, CACHE_SECONDS
        )
        #: experiments by id, for checking the lists events name (a secret never changes)
        self._by_id: TTLCache[tuple[str, int], ExperimentRecord | object] = TTLCache(
            10_000, CACHE_SECONDS
        )
        self._generation = 0
        self._exposures: Counter[tuple[str, int, int]] = Counter()
        self._flushing = asyncio.Lock()

    # --- scenarios -------------------------------------------------------------------
    async def put_scenario(
        self, tenant: str, name: str, definition: dict[str, Any], description: str | None
    ) -> ScenarioRecord:
        """A new version of ``name`` (under the lock deletions and experiment starts take,
        so versions are numbered one after another)."""
        async with self.engine.begin() as conn:
            await _lock_placements(conn, tenant)
            newest = (await conn.execute(_newest(tenant, name))).first()
            row = (
                await conn.execute(
                    S.insert()
                    .values(
                        tenant_id=tenant,
                        name=name,
                        version=(newest.version if newest else 0) + 1,
                        definition=definition,
                        description=description,
                    )
                    .returning(*S.c)
                )
            ).one()
        await self.changed(tenant)
        return _scenario(row)

    async def scenario(
        self, tenant: str, name: str, version: int | None = None
    ) -> ScenarioRecord | None:
        """The current version (or the one asked for); None if unknown or deleted."""
        stmt = (
            select(S).where(S.c.tenant_id == tenant, S.c.name == name, S.c.version == version)
            if version is not None
            else _newest(tenant, name)
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        return _scenario(row) if row is not None and row.definition is not None else None

    async def current_scenario(self, tenant: str, name: str) -> ScenarioRecord | None:
        """``scenario`` cached for a few seconds (forgotten at once when one changes)."""
        key = (tenant, name)
        if key in self._scenarios:
            return self._scenarios[key]
        generation = self._generation
        found = await self.scenario(tenant, name)
        if generation == self._generation:
            self._scenarios[key] = found
        return found

    async def scenarios(self, tenant: str) -> list[ScenarioRecord]:
        newest = (
            select(S)
            .distinct(S.c.name)
            .where(S.c.tenant_id == tenant)
            .order_by(S.c.name, S.c.version.desc())
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(newest)).all()
        return [_scenario(r) for r in rows if r.definition is not None]

    async def delete_scenario(self, tenant: str, name: str) -> str | None:
        """Delete ``name`` (a null version); why not, if it cannot be: unknown, or a running
        experiment uses it (checked under the lock experiments start under)."""
        async with self.engine.begin() as conn:
            await _lock_placements(conn, tenant)
            newest = (await conn.execute(_newest(tenant, name))).first()
            if newest is None or newest.definition is None:
                return "unknown"
            running = (
                await conn.execute(
                    select(E.c.id, E.c.name, E.c.scenario, E.c.variants).where(
                        E.c.tenant_id == tenant, E.c.status == RUNNING
                    )
                )
            ).all()
            for e in running:
                if name in {e.scenario, *(v["scenario"] for v in e.variants)}:
                    return f"experiment {e.id} ({e.name}) runs on it: stop it first"
            await conn.execute(
                S.insert().values(
                    tenant_id=tenant, name=name, version=newest.version + 1, definition=None
                )
            )
        await self.changed(tenant)
        return None

    # --- experiments -------------------------------------------------------------------
    async def create_experiment(
        self,
        tenant: str,
        name: str,
        scenario: str,
        metric: str,
        variants: Sequence[dict[str, Any]],
        click_types: Sequence[str],
        conversion_types: Sequence[str],
    ) -> ExperimentRecord:
        stmt = (
            E.insert()
            .values(
                tenant_id=tenant,
                name=name,
                scenario=scenario,
                metric=metric,
                variants=list(variants),
                click_types=list(click_types),
                conversion_types=list(conversion_types),
            )
            .returning(*E.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).one()
        return _experiment(row)

    async def experiment(self, tenant: str, experiment_id: int) -> ExperimentRecord | None:
        return (await self._experiments_by_id(tenant, [experiment_id])).get(experiment_id)

    async def unserved(self, tenant: str, named: Sequence[tuple[str, str]]) -> list[int]:
        """Positions in ``named`` ((recommendation id, user) pairs) of the ids that claim an
        experiment's list but are not one it served to that user. The experiments named
        are read in one statement, and only those not kept or whose kept copy refused an
        id (one read per call however many ids a batch forges)."""
        claims: list[tuple[int, str, str, int | None]] = []
        for n, (rid, user) in enumerate(named):
            if CLAIMS.match(rid):
                m = SIGNED.match(rid)
                claims.append((n, rid, user, int(m.group(1)) if m else None))
        if not claims:
            return []
        kept = {e: self._by_id.get((tenant, e), MISSING) for _, _, _, e in claims if e is not None}

        def refused(record: ExperimentRecord | object, rid: str, user: str) -> bool:
            return not isinstance(record, ExperimentRecord) or not record.served(rid, user)

        again = {e for n, rid, user, e in claims if e is not None and refused(kept[e], rid, user)}
        if again:
            found = await self._experiments_by_id(tenant, sorted(again))
            for e in again:
                kept[e] = self._by_id[(tenant, e)] = found.get(e, MISSING)
        return [n for n, rid, user, e in claims if e is None or refused(kept[e], rid, user)]

    async def _experiments_by_id(
        self, tenant: str, ids: Sequence[int]
    ) -> dict[int, ExperimentRecord]:
        stmt = select(E).where(E.c.tenant_id == tenant, any_of(E.c.id, ids))
        async with self.engine.connect() as conn:
            return {r.id: _experiment(r) for r in (await conn.execute(stmt)).all()}

    async def experiments(self, tenant: str) -> list[ExperimentRecord]:
        stmt = select(E).where(E.c.tenant_id == tenant).order_by(E.c.id.desc())
        async with self.engine.connect() as conn:
            return [_experiment(r) for r in (await conn.execute(stmt)).all()]

    async def move_experiment(
        self, tenant: str, experiment_id: int, status: str
    ) -> tuple[ExperimentRecord | None, str | None]:
        """Start or stop it: (the experiment, None), or (it as it is, why not). Only one
        experiment runs per scenario, and its scenarios must exist (checked under the
        tenant's placements lock)."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(E)
                    .where(E.c.tenant_id == tenant, E.c.id == experiment_id)
                    .with_for_update()
                )
            ).first()
            if row is None:
                return None, "unknown experiment"
            if row.status not in MOVES[status]:
                return _experiment(row), f"the experiment is {row.status}"
            if status == RUNNING:
                await _lock_placements(conn, tenant)
                names = {row.scenario, *(v["scenario"] for v in row.variants)}
                for name in sorted(names):
                    if not await _scenario_exists(conn, tenant, name):
                        return _experiment(row), f"scenario {name!r} was deleted"
                other = (
                    await conn.execute(
                        select(E.c.id).where(
                            E.c.tenant_id == tenant,
                            E.c.scenario == row.scenario,
                            E.c.status == RUNNING,
                        )
                    )
                ).first()
                if other is not None:
                    return _experiment(row), (
                        f"experiment {other.id} already runs on scenario {row.scenario!r}"
                    )
            now = {"started_at" if status == RUNNING else "stopped_at": func.now()}
            changes: dict[str, Any] = {"status": status, **now}
            updated = (
                await conn.execute(
                    E.update().where(E.c.id == experiment_id).values(**changes).returning(*E.c)
                )
            ).one()
        await self.changed(tenant)
        return _experiment(updated), None

    async def set_winner(self, tenant: str, experiment_id: int, winner: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                E.update()
                .where(E.c.tenant_id == tenant, E.c.id == experiment_id)
                .values(winner=winner)
            )
        await self.changed(tenant)

    async def running(self, tenant: str, scenario: str) -> ExperimentRecord | None:
        """The experiment running on ``scenario`` (cached like scenarios)."""
        key = (tenant, scenario)
        if key in self._running:
            return self._running[key]
        generation = self._generation
        stmt = select(E).where(
            E.c.tenant_id == tenant, E.c.scenario == scenario, E.c.status == RUNNING
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).first()
        found = _experiment(row) if row is not None else None
        if generation == self._generation:
            self._running[key] = found
        return found

    # --- exposures and outcomes ----------------------------------------------------------
    def exposed(self, tenant: str, experiment_id: int, variant: int) -> None:
        """One more list served by the variant (written by ``flush``)."""
        self._exposures[(tenant, experiment_id, variant)] += 1

    async def flush(self) -> None:
        """Add the counted exposures to the table. A row that can never be written (its
        experiment or tenant deleted) is dropped; the others are kept for the next try
        when the database is away."""
        async with self._flushing:
            if not self._exposures:
                return
            counts, self._exposures = self._exposures, Counter()
            rows = [
                {"tenant_id": t, "experiment_id": e, "variant": v, "exposures": n}
                for (t, e, v), n in sorted(counts.items())
            ]
            written = False
            try:
                try:
                    await self._write_exposures(rows)
                except IntegrityError:
                    for row in rows:  # one at a time: only the impossible ones are lost
                        try:
                            await self._write_exposures([row])
                        except IntegrityError:
                            log.info("dropped exposures of a deleted experiment: %s", row)
                written = True
            except Exception:
                log.warning("could not write %d exposure counts: kept", len(rows), exc_info=True)
                raise
            finally:
                if not written:  # the database away, or cancelled: keep them
                    self._exposures.update(counts)

    async def _write_exposures(self, rows: list[dict[str, Any]]) -> None:
        stmt = insert(X)
        stmt = stmt.on_conflict_do_update(
            index_elements=[X.c.tenant_id, X.c.experiment_id, X.c.variant],
            set_={"exposures": X.c.exposures + stmt.excluded.exposures},
        )
        with tenant_scope(None):  # rows of several tenants: as the service
            async with self.engine.begin() as conn:
                await conn.execute(stmt, rows)

    async def follow_exposures(self, every: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(Exception):  # logged by flush; tried again next time
                await self.flush()

    async def results(
        self, tenant: str, experiment: ExperimentRecord
    ) -> list[tuple[int, int, int]]:
        """Per variant: (lists served, lists clicked, lists converted)."""
        with contextlib.suppress(Exception):  # logged; the counts so far are worth showing
            await self.flush()
        async with self.engine.connect() as conn:
            shown = dict(
                (
                    await conn.execute(
                        select(X.c.variant, X.c.exposures).where(
                            X.c.tenant_id == tenant, X.c.experiment_id == experiment.id
                        )
                    )
                ).all()
            )
            outcomes = {
                r.variant: (r.clicks, r.conversions)
                for r in (
                    await conn.execute(
                        OUTCOMES,
                        {
                            "tenant": tenant,
                            "prefix": experiment.prefix,
                            "pattern": experiment.prefix + "%",
                            "clicks": experiment.click_types,
                            "conversions": experiment.conversion_types,
                        },
                    )
                ).all()
            }
        out = []
        for n in range(len(experiment.variants)):
            clicks, conversions = outcomes.get(str(n), (0, 0))
            out.append((int(shown.get(n, 0)), int(clicks), int(conversions)))
        return out

    # --- keeping replicas' caches fresh -------------------------------------------------
    def forget(self, tenant: str | None = None) -> None:
        self._generation += 1
        for cache in (self._scenarios, self._running):
            for key in [k for k in cache if tenant is None or k[0] == tenant]:
                cache.pop(key, None)

    async def changed(self, tenant: str) -> None:
        self.forget(tenant)
        await self.cache.publish(PLACEMENTS_CHANNEL, json.dumps({"tenant": tenant}).encode())

    async def follow_changes(self) -> None:
        """Forget a tenant's cached scenarios and experiments whenever another process
        changes them."""
        await forget_on_messages(self.cache, PLACEMENTS_CHANNEL, self.forget)
