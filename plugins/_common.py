"""Small helpers shared by the built-in plugins."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from engines.algorithm import Query, best, mask_positions
from engines.data import TrainingData

__all__ = ["best", "decayed", "history_arrays", "mask_positions", "preference_matrix"]


def decayed(
    weights: np.ndarray, times: np.ndarray, now: float, half_life_days: float | None
) -> np.ndarray:
    """``weights`` halved every ``half_life_days`` of age (unchanged when None)."""
    if not half_life_days:
        return weights.astype(np.float32)
    age_days = np.maximum(now - times, 0.0) / 86_400.0
    return (weights * np.exp2(-age_days / half_life_days)).astype(np.float32)


def history_arrays(
    query: Query, item_ids: np.ndarray, half_life_days: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The query's history as (positions into ``item_ids``, summed decayed weights); items
    the model does not know are dropped."""
    if not query.history:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    ids = np.fromiter((e.item_id for e in query.history), np.int64, len(query.history))
    w = np.fromiter((e.weight for e in query.history), np.float32, len(query.history))
    t = np.fromiter((e.timestamp for e in query.history), np.float64, len(query.history))
    w = decayed(w, t, query.now or float(t.max()), half_life_days)
    pos = np.searchsorted(item_ids, ids)
    pos = np.clip(pos, 0, max(len(item_ids) - 1, 0))
    known = (item_ids[pos] == ids) if len(item_ids) else np.zeros(len(ids), bool)
    pos, w = pos[known], w[known]
    if not len(pos):
        return np.empty(0, np.int64), np.empty(0, np.float32)
    uniq, inverse = np.unique(pos, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inverse, weights=w).astype(np.float32)


def preference_matrix(data: TrainingData, half_life_days: float | None) -> sp.csr_matrix:
    """Users × items: net-positive, time-decayed summed weights, compressed by log1p (a
    purchase worth 10 views counts about 3 times as much, not 10)."""
    weights = decayed(data.event_weights, data.event_times, data.now, half_life_days)
    m = sp.csr_matrix(
        (weights, (data.event_users, data.event_items)),
        shape=(data.n_users, data.n_items),
        dtype=np.float32,
    )
    m.sum_duplicates()
    m.data[m.data < 0] = 0
    m.eliminate_zeros()
    m.data = np.log1p(m.data)
    return m
