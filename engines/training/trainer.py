"""Training: fit models off the event loop, store them as new versions, hot-swap them, and a
periodic background trainer of which only one runs at a time across all replicas."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engines.errors import ErrorCode, RecographError
from engines.serving.service import LoadedModel, RecommendationService

log = logging.getLogger(__name__)

Announce = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TrainResult:
    algorithm: str
    version: int
    seconds: float
    n_users: int
    n_items: int
    n_events: int


class Trainer:
    def __init__(self, service: RecommendationService, announce: Announce | None = None) -> None:
        self.service = service
        self.storage = service.storage
        self.announce = announce

    async def train(
        self,
        tenant: str,
        algorithms: list[str] | None = None,
        configs: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[TrainResult]:
        """Fit the named algorithms (all when None) on the tenant's data and install them.

        Holds the tenant's training lock, so two replicas never train at the same time."""
        registry = self.service.registry
        names = algorithms or list(registry.algorithms)
        parsed = {n: registry.config(n, (configs or {}).get(n)) for n in names}
        with self.storage.tenant_scope(tenant):
            return await self._train(tenant, names, parsed)

    async def _train(
        self, tenant: str, names: list[str], parsed: Mapping[str, Any]
    ) -> list[TrainResult]:
        registry = self.service.registry
        lock = await self.storage.try_lock(f"train:{tenant}")
        if lock is None:
            raise RecographError(
                "another trainer is running for this tenant", ErrorCode.BUSY, "algorithms"
            )
        try:
            data = await self.service.training_data(tenant)
            results = []
            for name in names:
                model = registry.algorithm(name)(parsed[name])
                started = time.perf_counter()
                await asyncio.to_thread(model.fit, data)
                seconds = time.perf_counter() - started
                blob = await asyncio.to_thread(model.save)
                metrics = {
                    "fit_seconds": round(seconds, 3),
                    "users": data.n_users,
                    "items": data.n_items,
                    "events": len(data.event_users),
                }
                version = await self.storage.save_artifact(
                    tenant, name, blob, {"config": parsed[name].model_dump()}, metrics
                )
                vectors = model.item_vectors()
                if vectors is not None and len(vectors[1]):
                    await self.storage.store_vectors(tenant, *vectors)
                self.service.install(
                    tenant, name, LoadedModel(model, version, datetime.now(UTC), metrics)
                )
                results.append(
                    TrainResult(
                        name, version, seconds, data.n_users, data.n_items, len(data.event_users)
                    )
                )
                log.info("tenant %s: trained %s v%d in %.2fs", tenant, name, version, seconds)
        finally:
            await self.storage.unlock(lock)
        if self.announce is not None:
            await self.announce(tenant)
        return results

    async def run_periodically(
        self, tenants: Callable[[], Awaitable[list[str]]], interval_seconds: float
    ) -> None:
        """Retrain every tenant every ``interval_seconds``. A tenant without events, one
        whose events and items did not change since its last training here, or one another
        replica is training is skipped this round."""
        trained_at_marker: dict[str, tuple[int, ...]] = {}
        while True:
            for tenant in await tenants():
                with self.storage.tenant_scope(tenant):
                    marker = await self.storage.change_marker(tenant)
                if marker[0] == 0 or trained_at_marker.get(tenant) == marker:
                    continue
                try:
                    await self.train(tenant)
                    trained_at_marker[tenant] = marker
                except RecographError as exc:
                    if exc.code is not ErrorCode.BUSY:
                        log.warning("background training refused for %s: %s", tenant, exc)
                except Exception:
                    log.exception("background training failed for %s", tenant)
            await asyncio.sleep(interval_seconds)
