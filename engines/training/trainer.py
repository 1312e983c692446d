"""Training: fit models off the event loop, store them as new versions, hot-swap them, and a
periodic background trainer of which only one runs at a time across all replicas."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from engines.errors import ErrorCode, RecographError
from engines.serving.service import LoadedModel, RecommendationService
from engines.training.blend_learning import learn_blend

log = logging.getLogger(__name__)

#: tells every replica (and subscribers) that ``tenant`` has new model versions
Announce = Callable[[str, "list[TrainResult]"], Awaitable[None]]
#: growth-triggered training waits until a tenant's events pause this long (an import's
#: batches then land in one training) ...
QUIET_SECONDS = 5.0
#: ... but no longer than this after the first event it counted
MAX_WAIT_SECONDS = 120.0


@dataclass(slots=True)
class _Seen:
    """Events a trainer saw for a tenant since it last trained it."""

    count: int
    first: float
    last: float


@dataclass(frozen=True, slots=True)
class TrainResult:
    algorithm: str
    version: int
    seconds: float
    n_users: int
    n_items: int
    n_events: int
    #: what training chose and measured (``Algorithm.report``)
    report: dict[str, Any] = field(default_factory=dict)


class Trainer:
    def __init__(self, service: RecommendationService, announce: Announce | None = None) -> None:
        self.service = service
        self.storage = service.storage
        self.announce = announce
        #: tells the trainer process that a job waits (pub/sub); polling covers a miss
        self.wake: Callable[[], Awaitable[None]] | None = None
        self._seen: dict[str, _Seen] = {}
        #: events each tenant's newest models were trained on (None: no model yet)
        self._trained_on: dict[str, int | None] = {}

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
            marker = list(await self.storage.change_marker(tenant))  # before reading: a
            # change made while training is seen by the next round
            self._seen.pop(tenant, None)
            data = await self.service.training_data(tenant)
            self._trained_on[tenant] = len(data.event_users)
            results = []
            fitted = {}
            # the models fit side by side on the trainer's threads (numpy and scipy release
            # the GIL), and are stored and swapped in one by one, in order
            threads = asyncio.Semaphore(max(1, self.service.settings.training_threads))
            stopping = False

            async def fit(name: str) -> tuple[Any, float, bytes] | None:
                async with threads:
                    if stopping:  # another fit failed: this one does not start
                        return None
                    model = registry.algorithm(name)(parsed[name])
                    started = time.perf_counter()
                    await asyncio.to_thread(model.fit, data)
                    seconds = time.perf_counter() - started
                    return model, seconds, await asyncio.to_thread(model.save)

            fits = [asyncio.ensure_future(fit(name)) for name in names]
            try:
                for name, job in zip(names, fits, strict=True):
                    done = await asyncio.shield(job)  # a cancelled training waits below
                    assert done is not None
                    model, seconds, blob = done
                    fitted[name] = model
                    installed = await self._install(
                        tenant, name, model, seconds, blob, data, marker
                    )
                    results.append(installed)
            finally:
                # a thread cannot be cancelled: after a failure the fits that started run
                # to their end before the lock goes (else the next training would run
                # beside them); the others do not start
                stopping = True
                await asyncio.gather(*fits, return_exceptions=True)
            results += await self._learn_blends(tenant, data, fitted, marker)
        finally:
            await self.storage.unlock(lock)
        if self.announce is not None:
            await self.announce(tenant, results)
        return results

    async def _install(
        self,
        tenant: str,
        name: str,
        model: Any,
        seconds: float,
        blob: bytes,
        data: Any,
        marker: list[Any],
    ) -> TrainResult:
        """Store a fitted model (its vectors first) as a new version and serve it."""
        report = model.report()
        metrics = {
            "fit_seconds": round(seconds, 3),
            "users": data.n_users,
            "items": data.n_items,
            "events": len(data.event_users),
            **report,
        }
        # the config as fitted: training may have chosen some of it
        params = {"config": model.config.model_dump(), "marker": marker}
        vectors = model.item_vectors()  # stored first: a model never serves without
        if vectors is not None and len(vectors[1]):
            await self.storage.store_vectors(tenant, *vectors)
        version = await self.storage.save_artifact(tenant, name, blob, params, metrics)
        self.service.install(tenant, name, LoadedModel(model, version, datetime.now(UTC), metrics))
        # what pub/sub delivered while it trained went to the model it replaces
        await self.service.catch_up(tenant, model, marker)
        log.info("tenant %s: trained %s v%d in %.2fs", tenant, name, version, seconds)
        n = (data.n_users, data.n_items, len(data.event_users))
        return TrainResult(name, version, seconds, *n, report)

    async def _learn_blends(
        self, tenant: str, data: Any, fitted: Mapping[str, Any], marker: list[Any]
    ) -> list[TrainResult]:
        """Each preset whose members were all just trained gets weights fitted to the
        tenant's data (``blend_learning.py``), stored and served like a model version."""
        out: list[TrainResult] = []
        if not self.service.settings.learn_blends:
            return out
        for preset, weights in self.service.registry.presets.items():
            members = {n: fitted[n] for n, w in weights.items() if w > 0 and n in fitted}
            if len(members) < 2 or len(members) < sum(w > 0 for w in weights.values()):
                continue
            started = time.perf_counter()
            try:
                learned = await asyncio.to_thread(
                    learn_blend,
                    weights,
                    members,
                    data,
                    threads=self.service.settings.training_threads,
                )
            except Exception:
                log.exception("tenant %s: could not learn the weights of %s", tenant, preset)
                continue
            if learned is None:
                continue
            seconds = time.perf_counter() - started
            report = {"weights": learned.weights, **learned.report}
            version = await self.storage.save_artifact(
                tenant, preset, b"", {"weights": learned.weights, "marker": marker}, report
            )
            self.service.set_blend(tenant, preset, learned.weights, version)
            out.append(
                TrainResult(
                    preset,
                    version,
                    seconds,
                    data.n_users,
                    data.n_items,
                    len(data.event_users),
                    report,
                )
            )
            log.info("tenant %s: learned %s weights %s", tenant, preset, learned.weights)
        return out

    async def stale(self, tenant: str) -> list[str]:
        """The algorithms whose stored model was trained on data other than today's (all
        of them for a tenant never trained; none for a tenant without events). The marker
        is kept with each model, so a restarted process does not retrain what is current."""
        with self.storage.tenant_scope(tenant):
            marker = list(await self.storage.change_marker(tenant))
            if marker[0] == 0:
                return []
            out = []
            for name in self.service.registry.algorithms:
                head = await self.storage.latest_artifact(tenant, name, with_blob=False)
                if head is None or head.params.get("marker") != marker:
                    out.append(name)
            return out

    async def train_stale(self, tenant: str, missing_only: bool = False) -> bool:
        """Train what is stale (or only what was never trained); busy tenants are left to
        the trainer that holds them. False when the training was refused or failed."""
        try:
            names = await self.stale(tenant)
            if missing_only:
                with self.storage.tenant_scope(tenant):
                    names = [
                        n
                        for n in names
                        if await self.storage.latest_artifact(tenant, n, with_blob=False) is None
                    ]
            if names:
                await self.train(tenant, names)
            return True
        except RecographError as exc:
            if exc.code is not ErrorCode.BUSY:
                log.warning("background training refused for %s: %s", tenant, exc)
        except Exception:
            log.exception("background training failed for %s", tenant)
        return False

    async def run_periodically(
        self, tenants: Callable[[], Awaitable[list[str]]], interval_seconds: float
    ) -> None:
        """Every ``interval_seconds``, retrain each tenant whose events or items changed
        since its models were trained (skipping one another trainer is busy with)."""
        while True:
            for tenant in await tenants():
                await self.train_stale(tenant)
            await asyncio.sleep(interval_seconds)

    # --- training when the data grew -----------------------------------------------------
    def saw(self, tenant: str, count: int) -> None:
        """Count ``count`` events recorded for ``tenant`` (from the event stream)."""
        now = time.monotonic()
        seen = self._seen.get(tenant)
        if seen is None:
            self._seen[tenant] = _Seen(count, now, now)
        else:
            seen.count += count
            seen.last = now

    async def train_grown(self, share: float) -> list[str]:
        """Train each tenant whose first events arrived, or whose events grew by ``share``
        of those its models were trained on, once its events pause (or have waited long
        enough). Returns the tenants trained."""
        now = time.monotonic()
        trained = []
        for tenant, seen in list(self._seen.items()):
            if now - seen.last < QUIET_SECONDS and now - seen.first < MAX_WAIT_SECONDS:
                continue
            if tenant not in self._trained_on:
                self._trained_on[tenant] = await self._events_of_models(tenant)
            base = self._trained_on[tenant]
            if base is not None and seen.count < share * base:
                continue
            log.info(
                "tenant %s: %d new events since its models (%s): training",
                tenant,
                seen.count,
                "none yet" if base is None else f"trained on {base}",
            )
            self._seen.pop(tenant, None)
            if await self.train_stale(tenant):
                trained.append(tenant)
            else:  # busy elsewhere or failed: count these events again next round
                again = self._seen.setdefault(tenant, _Seen(0, seen.first, seen.last))
                again.count += seen.count
        return trained

    async def _events_of_models(self, tenant: str) -> int | None:
        with self.storage.tenant_scope(tenant):
            for name in self.service.registry.algorithms:
                head = await self.storage.latest_artifact(tenant, name, with_blob=False)
                if head is not None:
                    return int(head.metrics.get("events", 0))
        return None

    # --- jobs: the API asks, the trainer process trains ----------------------------------
    async def request(
        self,
        tenant: str,
        algorithms: list[str] | None,
        configs: Mapping[str, Mapping[str, Any]] | None,
        wait_seconds: float,
    ) -> list[TrainResult]:
        """Ask the trainer process to train, and wait for its answer (API workers never
        train themselves)."""
        registry = self.service.registry
        names = algorithms or list(registry.algorithms)
        parsed = {n: registry.config(n, (configs or {}).get(n)).model_dump() for n in names}
        job_id = await self.storage.enqueue_training(tenant, algorithms, parsed)
        if self.wake is not None:
            await self.wake()
        deadline = time.monotonic() + wait_seconds
        delay = 0.05
        while time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)
            job = await self.storage.training_job(tenant, job_id)
            if job is None or job.status in ("pending", "running"):
                continue
            if job.status == "failed":
                raise RecographError(
                    job.error or "training failed",
                    ErrorCode(job.error_code or ErrorCode.INVALID),
                    "algorithms",
                )
            with self.storage.tenant_scope(tenant):
                await self.service.refresh(tenant)  # serve the new versions here at once
            return [TrainResult(**r) for r in job.result or []]
        raise RecographError(
            f"training did not finish within {wait_seconds:g}s; it goes on in the trainer",
            ErrorCode.BUSY,
            "algorithms",
        )

    async def serve_jobs(self, woken: asyncio.Event, poll_seconds: float = 2.0) -> None:
        """Carry out requested trainings, oldest first, one at a time."""
        while True:
            job = await self.storage.claim_training()
            if job is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(woken.wait(), poll_seconds)
                woken.clear()
                continue
            try:
                results = await self.train(job.tenant, job.algorithms, job.configs)
                await self.storage.finish_training(job.id, [asdict(r) for r in results])
            except RecographError as exc:
                await self.storage.finish_training(job.id, None, exc.code.value, str(exc))
            except Exception as exc:
                log.exception("training job %s failed", job.id)
                await self.storage.finish_training(
                    job.id, None, ErrorCode.INVALID.value, f"training failed: {type(exc).__name__}"
                )
