"""Trending: time-decayed popularity. Scores are kept relative to a reference time, so new
events (on any replica) are added online and the ranking stays exact as time passes."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
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


class Trending(Algorithm):
    name = "trending"
    description = "Time-decayed popularity (half-life, window); filter by type or category."
    Config = TrendingConfig

    config: TrendingConfig

    def fit(self, data: TrainingData) -> None:
        self.item_ids = data.item_ids.copy()
        self.reference = float(data.now)
        horizon = self.reference - self.config.window_days * 86_400
        keep = data.event_times >= horizon
        if self.config.positive_only:
            keep &= data.event_weights > 0
        # the raw recent events stay, so a request can ask for a shorter window
        self.ev_items = data.event_items[keep].astype(np.int32)
        self.ev_times = data.event_times[keep].astype(np.float64)
        self.ev_weights = data.event_weights[keep].astype(np.float32)
        self._scores_cache: dict[float, np.ndarray] = {}
        self.fitted = True

    def scores(self, window_hours: float | None = None) -> np.ndarray:
        """Decayed popularity per item, in units of "weight at the reference time"."""
        window = window_hours or self.config.window_days * 24
        cached = self._scores_cache.get(window)
        if cached is not None:
            return cached
        keep = self.ev_times >= self.reference - window * 3600
        age_h = (self.reference - self.ev_times[keep]) / 3600.0
        contrib = self.ev_weights[keep] * np.exp2(-age_h / self.config.half_life_hours)
        scores = np.bincount(
            self.ev_items[keep], weights=contrib, minlength=len(self.item_ids)
        ).astype(np.float32)
        self._scores_cache[window] = scores
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
        newest = max(e.timestamp for e in sel)
        self.ev_items = np.concatenate([self.ev_items, pos[np.array(ok)].astype(np.int32)])
        self.ev_times = np.concatenate([self.ev_times, [e.timestamp for e in sel]])
        self.ev_weights = np.concatenate(
            [self.ev_weights, np.array([e.weight for e in sel], np.float32)]
        )
        self.reference = max(self.reference, newest)
        self._scores_cache = {}

    def state(self) -> dict[str, np.ndarray]:
        return {
            "item_ids": self.item_ids,
            "reference": np.array(self.reference),
            "ev_items": self.ev_items,
            "ev_times": self.ev_times,
            "ev_weights": self.ev_weights,
        }

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        self.reference = float(arrays["reference"])
        self.ev_items = arrays["ev_items"]
        self.ev_times = arrays["ev_times"]
        self.ev_weights = arrays["ev_weights"]
        self._scores_cache = {}


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [Trending]
