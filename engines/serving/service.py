"""The recommendation service: loads trained models, answers requests by ranking and
blending the chosen algorithms, and swaps in new model versions while it keeps answering."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from cachetools import LRUCache, TTLCache

from engines.algorithm import Algorithm, Query, Recommended, RecordedEvent
from engines.data import TrainingData
from engines.embedders import Embedder
from engines.errors import ErrorCode, RecographError
from engines.host.registry import Registry, training_fields
from engines.interfaces import AnswerCache, EngineStorage
from engines.serving.answers import answer_key, decode_answer, encode_answer
from engines.serving.arrangement import (
    BOOST,
    PROMOTED,
    ROTATION,
    Arrangement,
    capped,
    factors,
    place_promoted,
    promoted_count,
)
from engines.serving.batching import ScoreBatcher
from engines.serving.blending import Blended, Contribution, Pool, blend
from engines.serving.blending import pool as blend_pool
from engines.serving.calibration import calibrate, category_shares
from engines.serving.cold_routing import COLD_ITEM, cold_slots, route_cold, routed_blended
from engines.serving.diversity import mmr
from engines.serving.ranking import (
    allowed,
    allowed_except,
    explain_pool,
    rank_scores,
    rank_similar,
    top_positions,
)
from engines.serving.rules import ItemRules
from engines.serving.search import RETRIEVERS, VECTOR, SearchHit, fuse, pool_size
from engines.toolkit import position, rows_of

log = logging.getLogger(__name__)
T = TypeVar("T")
#: a calibrated list is chosen from at least this many blended candidates
CALIBRATION_POOL = 100
#: before a model exists, pages are filled by the counts of this many newest events ...
POPULARITY_WINDOW_EVENTS = 100_000
#: ... counted again at most this often
POPULARITY_TTL_SECONDS = 30.0
#: a model loaded from an artifact catches up on at most this many newer events
CATCH_UP_EVENTS = 500_000
CATCH_UP_SLICE = 5_000
#: items whose categories one tenant's copy keeps (then it starts again)
MAX_KNOWN_CATEGORIES = 200_000
#: the reason of items used together (``together``), and how many partners are read
TOGETHER = "together"
TOGETHER_POOL = 200
#: largest weight of one algorithm in a request (weighted sums must stay finite)
MAX_WEIGHT = 1e6


@dataclass(frozen=True, slots=True)
class _Sized:
    """A cached candidate set and what it costs in memory."""

    ids: np.ndarray
    nbytes: int


def _rules_bytes(rules: ItemRules) -> int:
    """About what the rules keeping a cache entry take (a filter may name 20,000 ids)."""
    strings = (
        *rules.categories_any,
        *rules.categories_exclude,
        *rules.tags_any,
        *rules.external_ids,
    )
    return 200 + sum(len(s) + 60 for s in strings) + 500 * len(rules.attributes)


@dataclass
class LoadedModel:
    algorithm: Algorithm
    version: int
    trained_at: datetime | None
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Selection:
    """One algorithm (or preset) of a request, its weight and optional config overrides."""

    name: str
    weight: float = 1.0
    config: Mapping[str, Any] | None = None


@dataclass
class EngineSettings:
    """How the host serves. The default blends are configuration (``RECOGRAPH_DEFAULT_
    ALGORITHMS``, ``RECOGRAPH_SIMILAR_ALGORITHMS``), not names the engine knows."""

    default_algorithms: dict[str, float] = field(default_factory=dict)
    similar_algorithms: dict[str, float] = field(default_factory=dict)
    candidate_pool: int = 200
    history_limit: int = 500
    #: default strength of calibrated re-ranking (0: off)
    calibration: float = 0.0
    #: the newest liked items whose categories set a calibrated list's target
    calibration_history: int = 200
    eligible_ttl_seconds: float = 5.0
    #: memory the cached candidate sets may take (their arrays and the rules naming them)
    eligible_cache_bytes: int = 64 * 2**20
    model_check_seconds: float = 30.0
    #: scoring over at most this many items (summed over algorithms) runs inline
    inline_scoring_items: int = 60_000
    #: after a full training, fit each preset's weights to the tenant's data
    learn_blends: bool = True
    #: models fitted at once by the trainer (numpy and scipy release the GIL)
    training_threads: int = 1
    #: default strength of diversification by maximal marginal relevance (0: off)
    diversity: float = 0.0
    #: share of each list for cold items (``cold_routing.py``; 0: off), and what is cold
    cold_item_share: float = 0.0
    cold_item_events: int = 5


class RecommendationService:
    def __init__(
        self,
        registry: Registry,
        storage: EngineStorage,
        embedder: Embedder,
        settings: EngineSettings | None = None,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.embedder = embedder
        self.settings = settings or EngineSettings()
        self._models: dict[str, dict[str, LoadedModel]] = {}
        #: per tenant, preset -> (version, weights learned on the tenant's data)
        self._blends: dict[str, dict[str, tuple[int, dict[str, float]]]] = {}
        self._checked: dict[str, float] = {}
        self._looked: dict[str, float] = {}
        self._eligible: TTLCache[tuple[str, ItemRules], _Sized] = TTLCache(
            maxsize=self.settings.eligible_cache_bytes,
            ttl=self.settings.eligible_ttl_seconds,
            getsizeof=lambda entry: entry.nbytes,
        )
        self._masks: LRUCache[tuple[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = (
            LRUCache(maxsize=256)
        )
        #: per loaded model's item counts: the sorted ids of its cold items
        self._cold: LRUCache[int, tuple[np.ndarray, np.ndarray]] = LRUCache(maxsize=64)
        #: recent event counts per item, for tenants no model knows popularity of yet
        self._popular: TTLCache[str, tuple[np.ndarray, np.ndarray]] = TTLCache(
            maxsize=1024, ttl=POPULARITY_TTL_SECONDS
        )
        #: calibration targets (a history's category mix) by user and newest event
        self._targets: TTLCache[tuple[Any, ...], dict[str, float]] = TTLCache(
            maxsize=10_000, ttl=300
        )
        #: each item's categories, by tenant (calibration reads hundreds per request)
        self._categories: LRUCache[str, dict[int, Sequence[str]]] = LRUCache(maxsize=16)
        self._load_lock = asyncio.Lock()
        self.batcher = ScoreBatcher(self.settings.inline_scoring_items)
        #: instrumentation hooks (metrics); no-ops unless the host sets them
        self.observe: Callable[[str, float], None] = lambda name, seconds: None
        self.on_cache: Callable[[str], None] = lambda result: None
        self.on_answer: Callable[[str], None] = lambda result: None
        #: finished answers per user (set by the host; None: every request is computed)
        self.answers: AnswerCache | None = None
        #: called with the tenant once new model versions serve here
        self.model_listeners: list[Callable[[str], None]] = []

    # --- models --------------------------------------------------------------------------
    async def models(self, tenant: str) -> dict[str, LoadedModel]:
        """The tenant's loaded models; checks for new versions every ``model_check_seconds``
        so that replicas pick up what another replica trained even without pub/sub."""
        now = time.monotonic()
        if now - self._checked.get(tenant, -1e9) > self.settings.model_check_seconds:
            async with self._load_lock:
                if now - self._checked.get(tenant, -1e9) > self.settings.model_check_seconds:
                    await self.refresh(tenant)
                    self._checked[tenant] = time.monotonic()
        return self._models.get(tenant, {})

    async def refresh(self, tenant: str) -> list[str]:
        """Load every algorithm whose stored version is newer than the loaded one."""
        loaded = self._models.setdefault(tenant, {})
        changed = []
        for name, cls in self.registry.algorithms.items():
            head = await self.storage.latest_artifact(tenant, name, with_blob=False)
            if head is None or (name in loaded and loaded[name].version >= head.version):
                continue
            art = await self.storage.latest_artifact(tenant, name)
            if art is None:
                continue
            try:
                model = cls(art.params.get("config") or {})
                await asyncio.to_thread(model.load, art.blob)
            except Exception:
                log.exception("could not load %s v%s for %s", name, art.version, tenant)
                continue
            self._share_item_ids(loaded, model)
            # one dict assignment: requests see either the old or the new model, never half
            loaded[name] = LoadedModel(model, art.version, art.created_at, art.metrics)
            changed.append(name)
            await self.catch_up(tenant, model, art.params.get("marker"))
        for preset in self.registry.presets:
            head = await self.storage.latest_artifact(tenant, preset, with_blob=False)
            known = self._blends.get(tenant, {}).get(preset)
            if head is None or (known is not None and known[0] >= head.version):
                continue
            weights = head.params.get("weights")
            if isinstance(weights, dict):
                self.set_blend(tenant, preset, weights, head.version, announce=False)
                changed.append(preset)
        if changed:
            log.info("tenant %s: loaded %s", tenant, ", ".join(changed))
            self._models_changed(tenant)
        return changed

    def set_blend(
        self,
        tenant: str,
        preset: str,
        weights: Mapping[str, float],
        version: int,
        announce: bool = True,
    ) -> None:
        """Serve ``preset`` with weights learned on the tenant's data."""
        clean = {n: float(w) for n, w in weights.items() if n in self.registry.algorithms}
        self._blends.setdefault(tenant, {})[preset] = (version, clean)
        if announce:
            self._models_changed(tenant)

    def blend_weights(self, tenant: str) -> dict[str, dict[str, float]]:
        """The presets whose weights were learned for ``tenant``."""
        return {p: w for p, (_, w) in self._blends.get(tenant, {}).items()}

    def _models_changed(self, tenant: str) -> None:
        for listener in list(self.model_listeners):
            listener(tenant)

    async def catch_up(self, tenant: str, model: Algorithm, marker: Any) -> None:
        """Give a model that learns online the events stored since the data it was trained
        on (its ``marker``: event count and newest event id), which pub/sub delivered
        before it served here. Events that arrive meanwhile are applied by ``learn``; a
        few may count twice, none is missed."""
        if type(model).partial_fit is Algorithm.partial_fit or not isinstance(marker, list):
            return
        if len(marker) < 2 or not isinstance(marker[1], int):
            return
        events = await self.storage.events_after(tenant, marker[1], CATCH_UP_EVENTS)
        # on the event loop, like ``learn``, so two updates never interleave; in slices,
        # so requests are served in between
        for start in range(0, len(events), CATCH_UP_SLICE):
            model.partial_fit(events[start : start + CATCH_UP_SLICE])
            await asyncio.sleep(0)

    def loaded(self) -> dict[str, dict[str, LoadedModel]]:
        return self._models

    @staticmethod
    def _share_item_ids(loaded: Mapping[str, LoadedModel], model: Algorithm) -> None:
        """Give ``model`` the item index of a loaded model with the same items, so that a
        request maps its history and masks its candidates once for all of them."""
        for other in loaded.values():
            ids = other.algorithm.item_ids
            if ids is not model.item_ids and np.array_equal(ids, model.item_ids):
                model.item_ids = ids
                return

    def install(self, tenant: str, name: str, model: LoadedModel) -> None:
        self._share_item_ids(self._models.get(tenant, {}), model.algorithm)
        self._models.setdefault(tenant, {})[name] = model
        self._models_changed(tenant)

    def learn(self, tenant: str, events: Sequence[RecordedEvent]) -> None:
        """Online updates of every loaded model of ``tenant`` from events just recorded."""
        for loaded in list(self._models.get(tenant, {}).values()):
            loaded.algorithm.partial_fit(events)

    async def training_data(self, tenant: str) -> TrainingData:
        users, items, weights, times = await self.storage.training_events(tenant)
        content = await self.storage.item_content(tenant)
        return await asyncio.to_thread(  # indexing millions of events is CPU work
            TrainingData.from_events,
            users,
            items,
            weights,
            times,
            content,
            now=float(times.max()) if len(times) else time.time(),
            embedder=self.embedder,
        )

    # --- requests --------------------------------------------------------------------------
    def _weights(
        self,
        tenant: str,
        user_id: str | None,
        selection: Sequence[Selection] | None,
        default: Mapping[str, float],
    ) -> tuple[dict[str, float], dict[str, Mapping[str, Any]]]:
        chosen = {s.name: s.weight for s in selection} if selection else dict(default)
        configs = {s.name: s.config for s in selection or () if s.config}
        for s in selection or ():
            if not 0 <= s.weight <= MAX_WEIGHT:
                raise RecographError(
                    f"weight of {s.name} must be a number from 0 to {MAX_WEIGHT:g}",
                    ErrorCode.INVALID_WEIGHT,
                    "algorithms",
                )
        override = self.registry.pm.hook.recommendation_weights(
            tenant=tenant, user_id=user_id, weights=dict(chosen)
        )
        if override is not None:
            chosen = dict(override)
        # presets with the weights learned on this tenant's data, when there are any
        learned = self.blend_weights(tenant) if self.settings.learn_blends else None
        expanded = self.registry.expand(chosen, learned)
        for name in configs:
            if name not in self.registry.algorithms:
                raise RecographError(
                    f"config is only accepted for algorithms, not {name!r}",
                    ErrorCode.INVALID_CONFIG,
                    "algorithms",
                )
        return {n: w for n, w in expanded.items() if w > 0}, configs

    def check_config(self, name: str, overrides: Mapping[str, Any]) -> None:
        """Refuse serving options a request could never use (unknown or invalid keys,
        training-only fields), e.g. when a scenario is saved."""
        config = self.registry.config(name, overrides)
        frozen = set(overrides) & training_fields(type(config))
        if frozen:
            raise RecographError(
                f"{', '.join(sorted(frozen))} of {name} only change when a model is trained",
                ErrorCode.INVALID_CONFIG,
                "algorithms",
            )

    def _serving_model(
        self, name: str, loaded: LoadedModel | None, overrides: Mapping[str, Any] | None
    ) -> Algorithm | None:
        if loaded is None:
            return None
        if not overrides:
            return loaded.algorithm
        trained = loaded.algorithm.config
        config = self.registry.config(name, overrides, trained)
        changed = {k for k in overrides if getattr(config, k) != getattr(trained, k)}
        frozen = changed & training_fields(type(config))
        if frozen:
            raise RecographError(
                f"{', '.join(sorted(frozen))} of {name} only change when a model is trained: "
                "use modelTrain with this config",
                ErrorCode.INVALID_CONFIG,
                "algorithms",
            )
        clone = copy.copy(loaded.algorithm)  # shares the fitted arrays, not the config
        clone.config = config
        return clone

    async def eligible(self, tenant: str, rules: ItemRules) -> np.ndarray:
        """Sorted pks of the items ``rules`` allow, cached briefly (bounded, least recently
        used first out)."""
        key = (tenant, rules)
        hit = self._eligible.get(key)
        if hit is not None:
            self.on_cache("hit")
            return hit.ids
        self.on_cache("miss")
        ids = await self.storage.eligible_items(tenant, rules)
        entry = _Sized(ids, ids.nbytes + _rules_bytes(rules))
        if entry.nbytes <= self.settings.eligible_cache_bytes // 4:
            self._eligible[key] = entry
        return ids

    def items_changed(self, tenant: str) -> None:
        """Forget cached candidate sets (an item was hidden, deleted or edited)."""
        for key in [k for k in self._eligible if k[0] == tenant]:
            self._eligible.pop(key, None)
        for target in [k for k in self._targets if k[0] == tenant]:
            self._targets.pop(target, None)
        self._categories.pop(tenant, None)

    async def recommend(
        self,
        tenant: str,
        user_id: str | None,
        limit: int,
        selection: Sequence[Selection] | None = None,
        rules: ItemRules | None = None,
        *,
        exclude_seen: bool = True,
        exclude_items: list[str] | None = None,
        query: Query | None = None,
        fill: bool = True,
        calibration: float | None = None,
        explain: bool = True,
        diversity: float | None = None,
        arrangement: Arrangement | None = None,
        page_size: int | None = None,
    ) -> list[Blended]:
        """The top ``limit`` items for ``user_id`` (or an anonymous ``query``) by the
        selected blend, among items ``rules`` allow. With ``fill``, a page the algorithms
        leave short is filled with the most popular qualifying items. ``calibration``
        (0..1; None: the configured default) re-ranks a longer list so its categories
        follow the history's. Without ``explain`` the contributions carry no
        ``because_item`` (the algorithms' explanations are a large part of a request's
        cost). ``arrangement``: business rules (boosts, promoted items, category caps,
        rotation of items shown before). A list longer than what one response shows
        (kept for its next pages) has ``page_size``: promoted and cold items are placed
        page by page, and only the first page counts as shown."""
        if calibration is None:
            calibration = self.settings.calibration
        if diversity is None:
            diversity = self.settings.diversity
        weights, configs = self._weights(
            tenant, user_id, selection, self.settings.default_algorithms
        )
        models = await self.models(tenant)
        if selection and any(n not in models for n in weights):
            # a model trained elsewhere may not be announced here yet: look (once a second)
            now = time.monotonic()
            if now - self._looked.get(tenant, -1e9) > 1.0:
                self._looked[tenant] = now
                await self.refresh(tenant)
                models = self._models.get(tenant, {})
        serving = {n: self._serving_model(n, models.get(n), configs.get(n)) for n in weights}
        missing = [n for n, m in serving.items() if m is None]
        if selection and missing and all(s.name in missing for s in selection):
            raise RecographError(
                f"no trained model for {', '.join(missing)}: run modelTrain",
                ErrorCode.NOT_TRAINED,
                "algorithms",
            )
        compute = self._recommend(
            tenant,
            user_id,
            limit,
            weights,
            serving,
            models,
            rules,
            query,
            exclude_seen=exclude_seen,
            exclude_items=exclude_items,
            fill=fill,
            calibration=calibration,
            explain=explain,
            diversity=diversity,
            arrangement=arrangement or Arrangement(),
            page_size=page_size or limit,
        )
        answers = self.answers if query is None else None
        rotating = arrangement is not None and arrangement.rotation > 0
        if answers is None or not answers.enabled or not user_id or rotating:
            return await compute
        key = answer_key(
            tenant,
            user_id,
            weights,
            configs,
            {n: models[n].version for n in weights if n in models},
            rules,
            limit,
            exclude_seen,
            exclude_items,
            calibration,
            fill,
            explain,
            diversity,
            arrangement,
            page_size,
        )
        cached, stamp = await answers.lookup(tenant, user_id, key)  # before computing
        self.on_answer("miss" if cached is None else "hit")
        if cached is not None:
            compute.close()
            return decode_answer(cached)
        blended = await compute
        await answers.store(tenant, key, stamp, encode_answer(blended))
        return blended

    async def _recommend(
        self,
        tenant: str,
        user_id: str | None,
        limit: int,
        weights: dict[str, float],
        serving: dict[str, Algorithm | None],
        models: Mapping[str, LoadedModel],
        rules: ItemRules | None,
        query: Query | None,
        *,
        exclude_seen: bool,
        exclude_items: list[str] | None,
        fill: bool,
        calibration: float,
        explain: bool,
        diversity: float,
        arrangement: Arrangement,
        page_size: int,
    ) -> list[Blended]:
        if query is None:
            query = (
                await self.storage.user_history(tenant, user_id, self.settings.history_limit)
                if user_id
                else Query()
            )
        if calibration > 0 and not (query.weights > 0).any():
            calibration = 0.0  # no liked history: nothing to follow
        candidates = await self.eligible(tenant, rules or ItemRules())
        excluded = [query.items] if exclude_seen else []
        if exclude_items:
            excluded.append(await self._pks_of(tenant, exclude_items))
        for boost in arrangement.boosts:
            if boost.factor == 0:  # a factor of 0 removes the items, like a filter
                excluded.append(await self.eligible(tenant, boost.rules))
        exclude = np.unique(np.concatenate(excluded)) if excluded else None
        pool = max(limit * 3, self.settings.candidate_pool)
        active = {n: m for n, m in serving.items() if m is not None}
        started = time.perf_counter()
        scored = await asyncio.gather(*(self.batcher.score(m, query) for m in active.values()))
        scores = dict(zip(active, scored, strict=True))
        waited = time.perf_counter() - started

        def run() -> Pool:
            out = {}
            masks: dict[int, np.ndarray] = {}  # per item index: models often share one
            for name, model in active.items():
                started = time.perf_counter()
                keep = masks.get(id(model.item_ids))
                if keep is None:
                    keep = allowed_except(self.mask(model, candidates), model.item_ids, exclude)
                    masks[id(model.item_ids)] = keep
                ranked = rank_scores(model, query, scores[name], pool, keep=keep, explain=False)
                out[name] = (weights[name], ranked)
                self.observe(name, waited + time.perf_counter() - started)
            # a calibrated or diversified list is chosen from a longer one
            rerank = calibration > 0 or diversity > 0 or not arrangement.empty
            return blend_pool(out, max(CALIBRATION_POOL, 3 * limit) if rerank else limit)

        candidates_pool = await self._compute(run, active.values())
        notes: dict[int, list[Contribution]] = {}
        if not arrangement.empty and len(candidates_pool):
            candidates_pool, notes = await self._arranged(
                tenant, user_id, query, candidates_pool, arrangement
            )
        picked: np.ndarray | None = None
        if calibration > 0 and len(candidates_pool):
            # with diversity as well, calibration keeps twice the page for it to choose from
            keep = 2 * limit if diversity > 0 else limit
            picked = await self._calibrated(tenant, query, candidates_pool, calibration, keep)
        if diversity > 0 and len(candidates_pool):
            picked = self._diversified(tenant, candidates_pool, picked, diversity, limit)
        if picked is None and not arrangement.empty:
            picked = np.arange(min(limit, len(candidates_pool)))
        if explain:
            blended = await self._compute(
                lambda: explain_pool(active, query, candidates_pool, picked), active.values()
            )
        else:
            blended = candidates_pool.take(picked)
        for b in blended:
            b.contributions.extend(notes.get(b.item_id, ()))
        share = arrangement.cold_share
        share = self.settings.cold_item_share if share is None else share
        # not with caps, boosts or rotation: routed items are ranked by content alone
        plain = not (arrangement.max_per_category or arrangement.boosts or arrangement.rotation)
        if share > 0 and query.user_id is not None and plain:
            blended = self._route_cold(candidates_pool, blended, active, weights, page_size, share)
        if fill and len(blended) < limit:  # N results whenever N items qualify
            popular = await self._popularity(tenant, models)
            more = self._backfill(
                candidates,
                exclude,
                blended,
                limit * 3 if arrangement.max_per_category else limit,
                popular,
            )
            if arrangement.max_per_category:
                kept = await self._within_caps(
                    tenant,
                    [b.item_id for b in more],
                    arrangement.max_per_category,
                    [b.item_id for b in blended],
                )
                more = [more[p] for p in kept]
            blended += more[: limit - len(blended)]
        if arrangement.promoted is not None:
            blended = await self._promote(
                tenant,
                models,
                candidates,
                candidates_pool,
                blended,
                exclude,
                arrangement,
                page_size,
                notes,
            )
        if arrangement.rotation > 0 and user_id and len(query) and blended:
            # the first page is what the user is shown (a known user's only: the counts are
            # kept per user)
            shown = [b.item_id for b in blended[:page_size]]
            await self.storage.record_impressions(tenant, user_id, shown)
        return blended

    def _route_cold(
        self,
        pool: Pool,
        blended: list[Blended],
        active: Mapping[str, Algorithm],
        weights: Mapping[str, float],
        limit: int,
        share: float,
    ) -> list[Blended]:
        """The list with its ``share`` of cold items (``cold_routing.py``), when an
        algorithm of the blend scores items by content and knows which items are cold."""
        slots = cold_slots(share, limit)
        sources = {n for n, m in active.items() if m.scores_cold_items and weights.get(n, 0) > 0}
        if not slots or not sources or len(sources) == len(active):
            return blended  # nothing to route to, or nothing else to route from
        cold = self._cold_items(active[min(sources)])
        if cold is None:
            return blended
        by_id = {b.item_id: b for b in blended}
        queue: list[int] = [b.item_id for b in blended]
        order: list[int] = []
        routed: set[int] = set()
        while queue and len(order) < len(blended):  # page by page (``limit`` items each)
            page, queue = queue[:limit], queue[limit:]
            placed, found = route_cold(page, pool, cold[~np.isin(cold, order)], sources, slots)
            routed.update(found)
            kept = set(placed)
            # warm items a cold one displaced open the next page; found ones leave the queue
            queue = [i for i in page if i not in kept] + [i for i in queue if i not in kept]
            order += placed
        out = []
        for item in order[: len(blended)]:
            b = by_id.get(item) or routed_blended(pool, item)
            if item in routed and all(c.algorithm != COLD_ITEM for c in b.contributions):
                b.contributions.append(Contribution(COLD_ITEM, 0.0, 0.0))
            out.append(b)
        return out

    def _cold_items(self, model: Algorithm) -> np.ndarray | None:
        """Sorted ids of the model's items with few events (kept while the model is)."""
        counts = model.item_counts()
        if counts is None:
            return None
        hit = self._cold.get(id(counts))
        if hit is not None and hit[0] is counts:
            return hit[1]
        cold = np.sort(model.item_ids[counts < self.settings.cold_item_events])
        self._cold[id(counts)] = (counts, cold)
        return cold

    async def _arranged(
        self,
        tenant: str,
        user_id: str | None,
        query: Query,
        pool: Pool,
        arrangement: Arrangement,
    ) -> tuple[Pool, dict[int, list[Contribution]]]:
        """The pool re-scored by boosts and rotation and re-sorted, then cut to the
        category caps; the reasons the rules added, by item."""
        boosts = [
            (b.factor, await self.eligible(tenant, b.rules))
            for b in arrangement.boosts
            if b.factor != 0
        ]
        shown = (
            await self.storage.impressions(tenant, user_id)
            if arrangement.rotation > 0 and user_id
            else {}
        )
        for item in query.items.tolist():  # what the user acted on does not rotate
            shown.pop(int(item), None)
        boosted = factors(pool.ids, boosts, {}, 0.0)
        rotated = factors(pool.ids, [], shown, arrangement.rotation)
        before = pool.totals
        totals = before * boosted * rotated
        order = np.lexsort((pool.ids, -totals))
        notes: dict[int, list[Contribution]] = {}
        for n in np.flatnonzero((boosted != 1.0) | (rotated != 1.0)).tolist():
            item, b, r, t = int(pool.ids[n]), float(boosted[n]), float(rotated[n]), float(before[n])
            mine = notes.setdefault(item, [])
            # weight 1 and the change as the score: no division by tiny factors
            if b != 1.0:
                mine.append(Contribution(BOOST, 1.0, t * (b - 1.0)))
            if r != 1.0:
                mine.append(Contribution(ROTATION, 1.0, t * b * (r - 1.0)))
        arranged = Pool(pool.ids[order], totals[order], pool.parts)
        if arrangement.max_per_category:
            kept = await self._within_caps(
                tenant, arranged.ids.tolist(), arrangement.max_per_category
            )
            keep = np.asarray(kept, np.int64)
            arranged = Pool(arranged.ids[keep], arranged.totals[keep], pool.parts)
        return arranged, notes

    async def _within_caps(
        self, tenant: str, ids: list[int], cap: int, placed: Sequence[int] = ()
    ) -> list[int]:
        """Positions of ``ids`` kept, in order, when no category may hold more than ``cap``
        items, counting the ``placed`` items first."""
        cats = await self._item_categories(tenant, [*placed, *ids])
        counts = Counter(c for i in placed for c in cats.get(i, ()))
        return capped(range(len(ids)), [cats.get(i, ()) for i in ids], cap, counts)

    async def _promote(
        self,
        tenant: str,
        models: Mapping[str, LoadedModel],
        candidates: np.ndarray,
        pool: Pool,
        blended: list[Blended],
        exclude: np.ndarray | None,
        arrangement: Arrangement,
        page: int,
        notes: Mapping[int, list[Contribution]],
    ) -> list[Blended]:
        """The list with its share of promoted items on every page of ``page`` items: the
        best promoted items of the pool, then the most popular ones, at evenly spread
        positions (reason ``promoted``); the category caps hold over the result."""
        promotion = arrangement.promoted
        assert promotion is not None
        wanted = promoted_count(promotion.share, page)
        size = max(len(blended), page)
        selected = await self.eligible(tenant, promotion.rules)
        selected = selected[np.isin(selected, candidates)]  # the request's filter holds
        if exclude is not None and len(exclude):
            selected = selected[~np.isin(selected, exclude)]
        need = wanted * -(-size // page)
        ranked = [int(i) for i in pool.ids[np.isin(pool.ids, selected)].tolist()]
        by_id = {b.item_id: b for b in blended}
        if len(ranked) < need:  # the most popular promoted items the pool lacked
            ids, popularity = await self._popularity(tenant, models)
            rest = selected[~np.isin(selected, np.asarray([*ranked, *by_id], np.int64))]
            top = ids[top_positions(popularity, allowed(ids, rest, None), need - len(ranked))]
            unranked = rest[~np.isin(rest, top)]
            ranked += np.concatenate([top, unranked])[: need - len(ranked)].tolist()
        queue: list[int] = list(by_id)
        order: list[int] = []
        placed: set[int] = set()
        used: set[int] = set()
        while queue and len(order) < size:
            chunk, queue = queue[:page], queue[page:]
            merged, got = place_promoted(chunk, [i for i in ranked if i not in used], wanted, page)
            queue = [i for i in chunk if i not in set(merged)] + queue  # pushed to the next
            order += merged
            used |= set(merged)
            placed |= got
        order = order[:size]
        at = {int(i): n for n, i in enumerate(pool.ids.tolist())}
        out = []
        for item in order:
            b = by_id.get(item)
            if b is None and item in at:
                b = pool.take([at[item]])[0]
                b.contributions.extend(notes.get(item, ()))
            b = b or Blended(item, 0.0)
            if item in placed:
                b.contributions = [c for c in b.contributions if c.algorithm != "fallback"]
                b.contributions.append(Contribution(PROMOTED, 0.0, 0.0))
            out.append(b)
        if arrangement.max_per_category:
            cap = arrangement.max_per_category
            out = [out[p] for p in await self._within_caps(tenant, [b.item_id for b in out], cap)]
        return out

    async def _pks_of(self, tenant: str, external_ids: Sequence[str]) -> np.ndarray:
        """Primary keys of the items named (unknown ids are left out)."""
        pks = await self.storage.item_pks(tenant, list(external_ids))
        return np.fromiter(pks.values(), np.int64, len(pks))

    async def _calibrated(
        self, tenant: str, query: Query, pool: Pool, strength: float, limit: int
    ) -> np.ndarray:
        """Positions in ``pool`` of the calibrated list, best first."""
        ids = pool.ids.tolist()
        # the history's category mix is the same from one request to the next until the
        # user acts (its newest event changes) or the catalogue changes (forgotten then)
        key = (tenant, query.user_id, len(query), int(query.items[0]), float(query.times[0]))
        target = self._targets.get(key) if query.user_id is not None else None
        if target is None:
            liked = query.weights > 0
            history = query.items[liked][: self.settings.calibration_history].tolist()
            weights = query.weights[liked][: self.settings.calibration_history].tolist()
            categories = await self._item_categories(tenant, [*ids, *history])
            target = category_shares(history, weights, categories)
            if query.user_id is not None:
                self._targets[key] = target
        else:
            categories = await self._item_categories(tenant, ids)
        picked = calibrate(ids, pool.totals, categories, target, strength, limit)
        return np.asarray(picked, np.int64)

    def _diversified(
        self, tenant: str, pool: Pool, picked: np.ndarray | None, strength: float, limit: int
    ) -> np.ndarray:
        """Positions in ``pool`` of a list re-ranked by maximal marginal relevance over the
        items' content vectors (among ``picked`` when calibration chose first)."""
        among = np.arange(len(pool)) if picked is None else np.asarray(picked, np.int64)
        vectors = self._vectors(tenant, pool.ids[among])
        if vectors is None:  # no model with item vectors: the ranking as it is
            return among[:limit]
        return among[mmr(pool.totals[among], vectors, strength, limit)]

    def _vectors(self, tenant: str, ids: np.ndarray) -> np.ndarray | None:
        """The items' vectors from the first loaded model that has them (zeros for items
        it does not know), or None."""
        for loaded in self._models.get(tenant, {}).values():
            found = loaded.algorithm.item_vectors()
            if found is None or not len(found[1]):
                continue
            _, known_ids, vectors = found
            return rows_of(np.asarray(known_ids), np.asarray(vectors, np.float32), ids)
        return None

    async def _item_categories(self, tenant: str, pks: list[int]) -> dict[int, Sequence[str]]:
        """Categories by item, kept here until the tenant's catalogue changes."""
        known = self._categories.get(tenant)
        if known is None:
            known = self._categories[tenant] = {}
        missing = [pk for pk in pks if pk not in known]
        if missing:
            if len(known) + len(missing) > MAX_KNOWN_CATEGORIES:
                known.clear()  # start again, with everything this request needs
                missing = list(pks)
            found = await self.storage.item_categories(tenant, missing)
            for pk in missing:
                known[pk] = tuple(found.get(pk, ()))
        return known

    async def _popularity(
        self, tenant: str, models: Mapping[str, LoadedModel]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(sorted item pks, popularity): from the first loaded model that knows it, else
        the counts of the tenant's recent events, so that before any model exists a new
        tenant's first page is its most popular items, not its oldest."""
        for loaded in models.values():
            popularity = loaded.algorithm.popularity()
            if popularity is not None:
                return loaded.algorithm.item_ids, popularity
        hit = self._popular.get(tenant)
        if hit is None:
            hit = await self.storage.recent_popularity(tenant, POPULARITY_WINDOW_EVENTS)
            self._popular[tenant] = hit
        return hit

    def mask(self, model: Algorithm, candidates: np.ndarray) -> np.ndarray:
        """Which of the model's items are candidates, cached while both arrays live (the
        catalogue snapshot and a loaded model keep them until they change)."""
        key = (id(model.item_ids), id(candidates))
        hit = self._masks.get(key)
        if hit is not None and hit[0] is model.item_ids and hit[1] is candidates:
            return hit[2]
        keep = allowed(model.item_ids, candidates, None)
        keep.setflags(write=False)
        self._masks[key] = (model.item_ids, candidates, keep)
        return keep

    async def _compute(self, work: Callable[[], T], models: Iterable[Algorithm]) -> T:
        """Run scoring inline when it is small (a thread hop would cost more than it
        saves), in a worker thread otherwise, so the event loop never waits on math."""
        size = sum(len(m.item_ids) for m in models)
        if size <= self.settings.inline_scoring_items:
            return work()
        return await asyncio.to_thread(work)

    def _backfill(
        self,
        candidates: np.ndarray,
        exclude: np.ndarray | None,
        have: list[Blended],
        limit: int,
        popular: tuple[np.ndarray, np.ndarray],
    ) -> list[Blended]:
        """Eligible items no algorithm proposed, most ``popular`` first (sorted item pks
        and their popularity), with score 0 and reason ``fallback``."""
        taken = np.asarray([b.item_id for b in have], dtype=np.int64)
        skip = taken if exclude is None else np.concatenate([exclude, taken])
        rest = candidates[~np.isin(candidates, skip)]
        if not len(rest):
            return []
        ids, popularity = popular
        wanted = limit - len(have)
        ranked = ids[top_positions(popularity, allowed(ids, rest, None), wanted)]
        unranked = rest[~np.isin(rest, ranked)]
        picked = np.concatenate([ranked, unranked])[:wanted]
        return [Blended(int(i), 0.0, [Contribution("fallback", 0.0, 0.0)]) for i in picked]

    async def together(
        self,
        tenant: str,
        item_id: str,
        limit: int,
        rules: ItemRules | None = None,
        exclude_items: Sequence[str] = (),
    ) -> list[Blended]:
        """Items most often used with ``item_id`` in one session (the online pair counts
        every event updates: "bought together"), among items ``rules`` allow; each with
        reason ``together`` whose score is its count relative to the first."""
        pks = await self.storage.item_pks(tenant, [item_id])
        if item_id not in pks:
            raise RecographError(f"unknown item {item_id!r}", ErrorCode.NOT_FOUND, "itemId")
        # the counters keep an item's 100 most frequent partners; filters pick among them
        ids, counts = await self.storage.items_together(tenant, pks[item_id], TOGETHER_POOL)
        candidates = await self.eligible(tenant, rules or ItemRules())
        keep = np.isin(ids, candidates) & (ids != pks[item_id])
        if exclude_items:
            keep &= ~np.isin(ids, await self._pks_of(tenant, exclude_items))
        ids, counts = ids[keep][:limit], counts[keep][:limit]
        top = float(counts[0]) if len(counts) else 1.0
        return [
            Blended(int(i), float(c), [Contribution(TOGETHER, 1.0, float(c) / top)])
            for i, c in zip(ids.tolist(), counts.tolist(), strict=True)
        ]

    async def similar_items(
        self,
        tenant: str,
        item_id: str,
        limit: int,
        selection: Sequence[Selection] | None = None,
        rules: ItemRules | None = None,
    ) -> list[Blended]:
        weights, configs = self._weights(tenant, None, selection, self.settings.similar_algorithms)
        pks = await self.storage.item_pks(tenant, [item_id])
        if item_id not in pks:
            raise RecographError(f"unknown item {item_id!r}", ErrorCode.NOT_FOUND, "itemId")
        models = await self.models(tenant)
        candidates = await self.eligible(tenant, rules or ItemRules())
        pool = max(limit * 3, self.settings.candidate_pool)
        serving = {n: self._serving_model(n, models.get(n), configs.get(n)) for n in weights}

        active = {n: m for n, m in serving.items() if m is not None}
        at = {n: position(m.item_ids, pks[item_id]) for n, m in active.items()}
        known = {n: p for n, p in at.items() if p is not None}
        # concurrent requests share one pass over each model (collaborative's low-rank
        # factors are ~100 MB on a catalogue of 40k items)
        found = await asyncio.gather(
            *(self.batcher.similar(active[n], p) for n, p in known.items())
        )
        scores = dict(zip(known, found, strict=True))

        def run() -> list[Blended]:
            return blend(
                {
                    n: (
                        weights[n],
                        rank_similar(
                            m, pks[item_id], pool, keep=self.mask(m, candidates), scores=scores[n]
                        )
                        if scores.get(n) is not None
                        else Recommended.empty(),
                    )
                    for n, m in active.items()
                },
                limit,
            )

        return await self._compute(run, active.values())

    async def search(
        self,
        tenant: str,
        text: str,
        limit: int,
        rules: ItemRules | None = None,
        retrievers: Sequence[str] = RETRIEVERS,
        exclude_items: Sequence[str] = (),
    ) -> list[SearchHit]:
        """Hybrid search: full text, title trigrams and the meaning of ``text`` (through the
        embedder of the tenant's content model, fitted on its catalogue, or the configured
        one), fused by reciprocal rank."""
        unknown = set(retrievers) - set(RETRIEVERS)
        if unknown or not retrievers:
            raise RecographError(
                f"retrievers must be some of {', '.join(RETRIEVERS)}",
                ErrorCode.INVALID,
                field="retrievers",
            )
        vector: tuple[str, np.ndarray] | None = None
        if VECTOR in retrievers:
            vector = await self._text_vector(tenant, text)
        ranked = await self.storage.search_items(
            tenant,
            text,
            vector,
            pool_size(limit + len(exclude_items)),
            rules or ItemRules(),
            tuple(retrievers),
        )
        if exclude_items:
            gone = set((await self._pks_of(tenant, exclude_items)).tolist())
            ranked = {r: [h for h in hits if h.pk not in gone] for r, hits in ranked.items()}
        return fuse(ranked, limit)

    async def _text_vector(self, tenant: str, text: str) -> tuple[str, np.ndarray] | None:
        for loaded in (await self.models(tenant)).values():
            found = loaded.algorithm.text_vector(text)
            if found is not None:
                return found
        try:
            vector = await asyncio.to_thread(self.embedder.embed_text, text)
        except Exception as exc:  # a remote embedder down: the word retrievers still answer
            log.warning("search without vectors: the embedder failed (%s)", exc)
            return None
        return (self.embedder.space, vector) if np.any(vector) else None
