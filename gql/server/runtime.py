"""Wiring the engines to the app: registry, embedder, service, trainer and the background
tasks that keep every replica's models and online state current."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from engines.algorithm import RecordedEvent
from engines.embedders import Embedder
from engines.errors import RecographError
from engines.host.registry import Registry
from engines.serving.service import EngineSettings, RecommendationService
from engines.training.trainer import Trainer, TrainResult
from gql.server.settings import Settings
from gql.server.watch import RecommendationWatch
from gql.server.webhooks import WebhookWorker
from storage.backends import SlowConsumer
from storage.engine_storage import StoreEngineStorage
from storage.events import decode_events, events_channel
from storage.repositories.vector_indexes import SWEEP_SECONDS
from storage.store import Store
from storage.tasks import stop_tasks
from storage.tenancy import set_tenant, tenant_scope

log = logging.getLogger(__name__)
MODELS_CHANNEL = "models"
TRAINING_CHANNEL = "training"  # wakes the trainer when a training is requested
#: at start-up, models and catalogue copies are loaded for this many tenants ...
WARM_TENANTS = 100
#: ... for at most this long
WARM_UP_SECONDS = 120.0
GROWTH_CHECK_SECONDS = 2.0  # how often the trainer looks for tenants whose data grew


def _plain(value: object) -> object:
    """numpy numbers in training reports as JSON numbers; anything else as text."""
    item = getattr(value, "item", None)
    return item() if callable(item) else str(value)


def trained_model_message(result: TrainResult) -> dict[str, object]:
    return {
        "algorithm": result.algorithm,
        "version": result.version,
        "seconds": round(result.seconds, 3),
        "users": result.n_users,
        "items": result.n_items,
        "events": result.n_events,
        "report": result.report,
    }


def make_embedder(registry: Registry, settings: Settings) -> Embedder:
    options = {
        k: v
        for k, v in {
            "url": settings.embedder_url,
            "key": settings.embedder_key,
            "model": settings.embedder_model,
        }.items()
        if v
    }
    try:
        return registry.embedder(settings.embedder, options)
    except RecographError as exc:
        raise RuntimeError(str(exc)) from None


def load_registry(settings: Settings) -> Registry:
    """The plugins allowed by ``RECOGRAPH_PLUGINS``, configured by
    ``RECOGRAPH_PLUGIN_CONFIG``; failures to load are logged by plugin name."""
    registry = Registry.load(settings.plugin_names(), settings.plugin_config_data())
    for name, error in registry.report.failed.items():
        log.error("plugin %s not loaded: %s", name, error)
    return registry


@dataclass
class EngineRuntime:
    store: Store
    registry: Registry
    service: RecommendationService
    trainer: Trainer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    following: set[str] = field(default_factory=set)
    #: finds changed lists of users that webhooks watch (set by ``build``)
    watch: RecommendationWatch = field(init=False)
    #: the store's listener lists this runtime added itself to (removed at stop)
    hooks: list[tuple[list[Any], Any]] = field(default_factory=list)
    #: loading models and catalogue copies at start-up (None: not started)
    warming: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, store: Store, settings: Settings) -> EngineRuntime:
        registry = load_registry(settings)
        service = RecommendationService(
            registry,
            StoreEngineStorage(store),
            make_embedder(registry, settings),
            EngineSettings(
                default_algorithms=settings.default_weights(),
                similar_algorithms=settings.similar_weights(),
                candidate_pool=settings.candidate_pool,
                calibration=settings.calibration,
                learn_blends=settings.learn_blend_weights,
                training_threads=settings.training_thread_count(),
                diversity=settings.diversity,
                cold_item_share=settings.cold_item_share,
                cold_item_events=settings.cold_item_events,
            ),
        )

        service.answers = store.results
        runtime = cls(store, registry, service, Trainer(service))
        runtime.watch = RecommendationWatch(store, service)
        runtime.listen()
        runtime.trainer.announce = runtime.announce
        runtime.trainer.wake = runtime.wake_trainer
        return runtime

    def listen(self) -> None:
        """Hear the store's local changes: the catalogue for the candidate caches, and what
        may change the lists of users that webhooks watch."""
        watch = self.watch

        def on_events(tenant: str, events: list[RecordedEvent]) -> None:
            watch.schedule(tenant, (e.user for e in events), "events")

        hooks: list[tuple[list[Any], Any]] = [
            (self.store.snapshots.listeners, self.service.items_changed),
            (self.store.events.listeners, on_events),
            (
                self.store.snapshots.local_listeners,
                lambda tenant: watch.schedule(tenant, None, "catalogue"),
            ),
            # a newly watched user's list is remembered at once: later changes compare
            (self.store.webhooks.listeners, lambda tenant: watch.schedule(tenant, None, "watch")),
        ]
        for listeners, hook in hooks:
            listeners.append(hook)
        self.hooks = hooks

    def unlisten(self) -> None:
        for listeners, hook in self.hooks:
            with contextlib.suppress(ValueError):
                listeners.remove(hook)
        self.hooks = []

    async def wake_trainer(self) -> None:
        await self.store.cache.publish(TRAINING_CHANNEL, b"{}")

    async def announce(self, tenant: str, results: list[TrainResult]) -> None:
        """Tell every replica, and ``modelTrained`` subscribers, that new model versions
        exist."""
        self.watch.schedule(tenant, None, "model")
        message = {"tenant": tenant, "models": [trained_model_message(r) for r in results]}
        await self.store.cache.publish(MODELS_CHANNEL, json.dumps(message, default=_plain).encode())

    def follow(self, tenant: str) -> None:
        """Apply the tenant's events online from now on (idempotent, cheap per request)."""
        if tenant not in self.following:
            self.following.add(tenant)
            self.tasks.append(asyncio.create_task(self._follow_events(tenant)))

    async def start(self, settings: Settings) -> None:
        """The background work of an API process: follow catalogue changes, new models and
        events; train here too only when ``RECOGRAPH_TRAIN_IN_PROCESS`` says so."""
        self.store.snapshots.follow()
        worker = WebhookWorker(self.store, settings)
        self.tasks.append(asyncio.create_task(worker.run(), name="webhook-deliveries"))
        placements = self.store.placements
        self.tasks.append(asyncio.create_task(placements.follow_changes(), name="placements"))
        self.tasks.append(asyncio.create_task(placements.follow_exposures(), name="exposures"))
        tenants = await self.store.tenants()
        self.tasks.append(asyncio.create_task(self._follow_models()))
        for tenant in tenants:
            self.follow(tenant)
        self.warming = asyncio.create_task(self._warm_up(tenants), name="warm-up")
        self.tasks.append(self.warming)
        if settings.trains_here():
            await self.start_training(settings, tenants)

    async def _warm_up(self, tenants: list[str]) -> None:
        """Load the models and the catalogue copy of (the first ``WARM_TENANTS``) tenants
        before the first request needs them: on Gowalla a cold first request took 10 s.
        ``/ready`` says "warming" until this is done (or ``WARM_UP_SECONDS`` passed)."""
        try:
            async with asyncio.timeout(WARM_UP_SECONDS):
                for tenant in tenants[:WARM_TENANTS]:
                    with tenant_scope(tenant):
                        await self.service.models(tenant)
                        await self.store.snapshots.get(tenant)
        except TimeoutError:
            log.warning("warm-up took longer than %ss: serving meanwhile", WARM_UP_SECONDS)
        except Exception:
            log.exception("warm-up failed: models load at their first request")

    @property
    def warm(self) -> bool:
        return self.warming is None or self.warming.done()

    async def start_training(self, settings: Settings, tenants: list[str] | None = None) -> None:
        """The trainer's work: requested trainings, models missing at start-up, and
        retraining every tenant whose data changed, periodically."""
        if tenants is None:
            tenants = await self.store.tenants()
        woken = asyncio.Event()
        self.tasks.append(asyncio.create_task(self._follow_training_requests(woken)))
        self.tasks.append(asyncio.create_task(self.trainer.serve_jobs(woken)))
        if settings.train_on_start:
            self.tasks.append(asyncio.create_task(self._train_missing(tenants)))
        if settings.train_interval_seconds > 0:
            self.tasks.append(
                asyncio.create_task(
                    self.trainer.run_periodically(
                        self.store.tenants, settings.train_interval_seconds
                    )
                )
            )
        if settings.train_on_growth > 0:
            self.tasks.append(asyncio.create_task(self._train_on_growth(settings.train_on_growth)))
        self.tasks.append(asyncio.create_task(self._keep_vector_indexes(), name="vector-indexes"))

    async def _keep_vector_indexes(self) -> None:
        """Build the vector spaces' deferred indexes once their writes pause
        (``storage/repositories/vector_indexes.py``); builds run inside PostgreSQL."""
        while True:
            try:
                await self.store.vectors.indexes.sweep()
            except Exception:
                log.exception("building the vector indexes failed; retrying")
            await asyncio.sleep(SWEEP_SECONDS)

    async def _train_on_growth(self, share: float) -> None:
        """Count every tenant's recorded events and train those that grew enough
        (``Trainer.train_grown``); new tenants are looked for while training runs."""
        self.tasks.append(asyncio.create_task(self._count_new_tenants()))
        while True:
            try:
                await self.trainer.train_grown(share)
            except Exception:
                log.exception("growth-triggered training failed")
            await asyncio.sleep(GROWTH_CHECK_SECONDS)

    async def _count_new_tenants(self) -> None:
        counting: set[str] = set()
        while True:
            try:
                for tenant in await self.store.tenants():
                    if tenant not in counting:
                        counting.add(tenant)
                        self.tasks.append(asyncio.create_task(self._count_events(tenant)))
            except Exception:
                log.exception("could not list tenants")
            await asyncio.sleep(GROWTH_CHECK_SECONDS)

    async def _count_events(self, tenant: str) -> None:
        while True:
            try:
                async for raw in self.store.cache.subscribe(events_channel(tenant)):
                    self.trainer.saw(tenant, len(decode_events(raw)))
            except SlowConsumer:
                continue
            except Exception:
                log.exception("counting the events of %s failed; retrying", tenant)
                await asyncio.sleep(GROWTH_CHECK_SECONDS)

    async def _follow_training_requests(self, woken: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(SlowConsumer):
                async for _ in self.store.cache.subscribe(TRAINING_CHANNEL):
                    woken.set()

    async def stop(self) -> None:
        self.unlisten()
        await self.watch.stop()
        await stop_tasks(self.tasks)
        self.tasks.clear()
        with contextlib.suppress(Exception):  # logged by flush
            await self.store.placements.flush()

    async def _follow_models(self) -> None:
        """Another replica trained: load its new versions now rather than at the next poll
        (announcements missed while pub/sub was away are found by that poll)."""
        while True:
            with contextlib.suppress(SlowConsumer):
                async for raw in self.store.cache.subscribe(MODELS_CHANNEL):
                    try:
                        tenant = json.loads(raw)["tenant"]
                        with tenant_scope(tenant):
                            await self.service.refresh(tenant)
                    except Exception:
                        log.exception("could not refresh models")

    async def _follow_events(self, tenant: str) -> None:
        """Online updates from events recorded on any replica."""
        set_tenant(tenant)  # this task only ever works for this tenant
        while True:
            try:
                async for raw in self.store.cache.subscribe(events_channel(tenant)):
                    try:
                        events = decode_events(raw)
                        await self.store.results.users_changed(
                            tenant, (e.user for e in events), local=False
                        )
                        if self.store.online.follows_stream:  # each process keeps its own
                            await self.store.online.record(tenant, events)
                        self.service.learn(tenant, events)
                        self.registry.pm.hook.interaction_recorded(tenant=tenant, events=events)
                    except Exception:
                        log.exception("online update failed")
            except SlowConsumer:
                log.warning("online updates of %s fell behind; some events were skipped", tenant)
                self.store.results.missed_changes()

    async def _train_missing(self, tenants: list[str]) -> None:
        for tenant in tenants:
            await self.trainer.train_stale(tenant, missing_only=True)


@contextlib.asynccontextmanager
async def for_command(store: Store, settings: Settings) -> AsyncIterator[EngineRuntime]:
    """The engine of a one-off command (``recograph import``, ``recograph train``): no
    background work, but, as through the API, the lists of users that webhooks watch are
    looked at for what the command changed before it ends."""
    runtime = EngineRuntime.build(store, settings)
    try:
        yield runtime
    finally:
        await runtime.watch.drain()
        runtime.unlisten()


@contextlib.asynccontextmanager
async def running(store: Store, settings: Settings) -> AsyncIterator[EngineRuntime]:
    runtime = EngineRuntime.build(store, settings)
    try:
        await runtime.start(settings)
        yield runtime
    finally:
        await runtime.stop()
