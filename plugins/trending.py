"""Trending: time-decayed popularity. Scores are kept relative to a reference time, so new
events (on any replica) are added online and the ranking stays exact as time passes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from cachetools import LRUCache
from pydantic import Field

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    RecordedEvent,
    Scores,
    TrainingData,
    hookimpl,
    positions,
    training_field,
)


class TrendingConfig(AlgorithmConfig):
    half_life_hours: float = Field(72.0, gt=0, description="Age at which an event counts half.")
    window_days: float = training_field(
        30.0, gt=0, description="Events older than this are ignored."
    )
    positive_only: bool = training_field(True, description="Ignore negative events (dislikes).")
    window_hours: float | None = Field(
        None, gt=0, lt=1e6, description="Count only events this recent (default: the window)."
    )


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

    def score(self, query: Query) -> Scores | None:
        """The same for everyone: items with no recent positive weight are never shown."""
        scores = self.scores(self.config.window_hours)
        return np.where(scores > 0, scores, -np.inf).astype(np.float32)

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        row = self.score(Query())
        assert row is not None
        return np.tile(row, (len(queries), 1))

    def popularity(self) -> Scores | None:
        return self.scores()

    def partial_fit(self, events: Sequence[RecordedEvent]) -> None:
        """Count new events at once: append them to the recent-event arrays."""
        if not events:
            return
        items = np.fromiter((e.item_pk for e in events), np.int64, len(events))
        weights = np.fromiter((e.weight for e in events), np.float32, len(events))
        times = np.fromiter((e.timestamp for e in events), np.float64, len(events))
        pos, ok = positions(self.item_ids, items)
        if self.config.positive_only:
            ok &= weights > 0
        if not ok.any():
            return
        old = self._events
        # built aside, then swapped in one assignment: a concurrent reader sees the old
        # arrays or the new ones, never a mix of lengths
        self._events = _Events(
            np.concatenate([old.items, pos[ok].astype(np.int32)]),
            np.concatenate([old.times, times[ok]]),
            np.concatenate([old.weights, weights[ok]]),
            max(old.reference, float(times[ok].max())),
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
