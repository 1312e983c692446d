"""Trending: time-decayed popularity. Scores are kept relative to a reference time, so new
events (on any replica) are added online and the ranking stays exact as time passes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from cachetools import LRUCache
from pydantic import Field

from engines import (
    Algorithm,
    AlgorithmConfig,
    HistoryEvent,
    Query,
    Recommended,
    TrainingData,
    hookimpl,
    training_field,
)
from plugins._common import best, mask_positions


class TrendingConfig(AlgorithmConfig):
    half_life_hours: float = Field(72.0, gt=0, description="Age at which an event counts half.")
    window_days: float = training_field(
        30.0, gt=0, description="Events older than this are ignored."
    )
    positive_only: bool = training_field(True, description="Ignore negative events (dislikes).")


class _Events(NamedTuple):
    """The recent events, swapped as one object."""

    items: np.ndarray
    times: np.ndarray
    weights: np.ndarray
    reference: float


def _score_cache() -> LRUCache[float, np.ndarray]:
    # requests choose windowHours freely: keep a few windows, not one per value asked
    return LRUCache(maxsize=8)


class Trending(Algorithm):
    name = "trending"
    description = "Time-decayed popularity (half-life, window); filter by type or category."
    Config = TrendingConfig

    config: TrendingConfig

    def fit(self, data: TrainingData) -> None:
        self.item_ids = data.item_ids.copy()
        horizon = float(data.now) - self.config.window_days * 86_400
        keep = data.event_times >= horizon
        if self.config.positive_only:
            keep &= data.event_weights > 0
        # the raw recent events stay, so a request can ask for a shorter window
        self._events = _Events(
            data.event_items[keep].astype(np.int32),
            data.event_times[keep].astype(np.float64),
            data.event_weights[keep].astype(np.float32),
            float(data.now),
        )
        self._scores_cache = _score_cache()
        self.fitted = True

    @property
    def reference(self) -> float:
        return self._events.reference

    def scores(self, window_hours: float | None = None) -> np.ndarray:
        """Decayed popularity per item, in units of "weight at the reference time"."""
        window = float(window_hours or self.config.window_days * 24)
        events, cache = self._events, self._scores_cache  # one consistent snapshot
        cached = cache.get(window)
        if cached is not None:
            return cached
        keep = events.times >= events.reference - window * 3600
        age_h = (events.reference - events.times[keep]) / 3600.0
        contrib = events.weights[keep] * np.exp2(-age_h / self.config.half_life_hours)
        scores = np.bincount(
            events.items[keep], weights=contrib, minlength=len(self.item_ids)
        ).astype(np.float32)
        cache[window] = scores
        return scores

    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
        window_hours: float | None = None,
    ) -> Recommended:
        scores = self.scores(window_hours)
        top = best(
            np.where(scores > 0, scores, -np.inf),
            mask_positions(self.item_ids, exclude, candidates),
            limit,
        )
        return Recommended(self.item_ids[top], scores[top])

    def partial_fit_user(self, user_id: int, events: list[HistoryEvent]) -> None:
        """Count new events at once: append them to the recent-event arrays."""
        pos = np.searchsorted(self.item_ids, [e.item_id for e in events])
        ok = [
            p < len(self.item_ids)
            and self.item_ids[p] == e.item_id
            and (e.weight > 0 or not self.config.positive_only)
            for p, e in zip(pos, events, strict=True)
        ]
        if not any(ok):
            return
        sel = [e for e, good in zip(events, ok, strict=True) if good]
        old = self._events
        # built aside, then swapped in one assignment: a concurrent reader sees the old
        # arrays or the new ones, never a mix of lengths
        self._events = _Events(
            np.concatenate([old.items, pos[np.array(ok)].astype(np.int32)]),
            np.concatenate([old.times, [e.timestamp for e in sel]]),
            np.concatenate([old.weights, np.array([e.weight for e in sel], np.float32)]),
            max(old.reference, max(e.timestamp for e in sel)),
        )
        self._scores_cache = _score_cache()

    def state(self) -> dict[str, np.ndarray]:
        events = self._events
        return {
            "item_ids": self.item_ids,
            "reference": np.array(events.reference),
            "ev_items": events.items,
            "ev_times": events.times,
            "ev_weights": events.weights,
        }

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        self._events = _Events(
            arrays["ev_items"],
            arrays["ev_times"],
            arrays["ev_weights"],
            float(arrays["reference"]),
        )
        self._scores_cache = _score_cache()


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [Trending]
