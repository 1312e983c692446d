"""Helpers for algorithm authors: histories as positions, decay, preference matrices, sparse
neighbour pruning. Everything here is exported from ``engines``; built-in plugins use
nothing else, so third-party plugins can do all that they do."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from engines.algorithm import Query
from engines.data import TrainingData


def position(item_ids: np.ndarray, item_id: int) -> int | None:
    """Index of ``item_id`` in the sorted ``item_ids``, or None if the model lacks it."""
    pos = int(np.searchsorted(item_ids, item_id))
    return pos if pos < len(item_ids) and item_ids[pos] == item_id else None


def positions(item_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in the sorted ``item_ids``, mask of ``ids`` the model knows)."""
    ids = np.asarray(ids, dtype=np.int64)
    if not len(item_ids):
        return np.zeros(len(ids), np.int64), np.zeros(len(ids), bool)
    pos = np.clip(np.searchsorted(item_ids, ids), 0, len(item_ids) - 1)
    return pos, item_ids[pos] == ids


def rows_of(item_ids: np.ndarray, matrix: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The rows of ``matrix`` (one per item of the sorted ``item_ids``) for ``ids``, zeros
    for ids it does not know."""
    pos, known = positions(item_ids, ids)
    out = np.zeros((len(pos), matrix.shape[1]), matrix.dtype)
    out[known] = matrix[pos[known]]
    return out


def decayed(
    weights: np.ndarray, times: np.ndarray, now: float, half_life_days: float | None
) -> np.ndarray:
    """``weights`` halved every ``half_life_days`` of age (unchanged when None)."""
    if not half_life_days:
        return np.asarray(weights, dtype=np.float32)
    age_days = np.maximum(now - times, 0.0) / 86_400.0
    return (weights * np.exp2(-age_days / half_life_days)).astype(np.float32)


def history_arrays(
    query: Query, item_ids: np.ndarray, half_life_days: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The query's history as (positions into ``item_ids``, summed decayed weights),
    positions sorted; items the model does not know are dropped."""
    if not len(query):
        return np.empty(0, np.int64), np.empty(0, np.float32)
    # the algorithms of one request mostly share an item index (the host interns equal
    # ones): the positions are found once
    key = ("history", id(item_ids), half_life_days)
    hit = query.memo.get(key)
    if hit is not None and hit[0] is item_ids:
        return hit[1], hit[2]
    pos, w = _history_arrays(query, item_ids, half_life_days)
    pos.setflags(write=False)
    w.setflags(write=False)
    query.memo[key] = (item_ids, pos, w)
    return pos, w


def _history_arrays(
    query: Query, item_ids: np.ndarray, half_life_days: float | None
) -> tuple[np.ndarray, np.ndarray]:
    now = query.now or float(query.times.max())
    w = decayed(query.weights, query.times, now, half_life_days)
    pos, known = positions(item_ids, query.items)
    pos, w = pos[known], w[known]
    if not len(pos):
        return np.empty(0, np.int64), np.empty(0, np.float32)
    uniq, inverse = np.unique(pos, return_inverse=True)
    return uniq.astype(np.int64), np.bincount(inverse, weights=w).astype(np.float32)


def history_matrix(
    queries: Sequence[Query], item_ids: np.ndarray, half_life_days: float | None = None
) -> sp.csr_matrix:
    """Queries × items: each query's summed decayed weights (for batch scoring)."""
    rows, cols, vals = [], [], []
    for row, query in enumerate(queries):
        pos, w = history_arrays(query, item_ids, half_life_days)
        rows.append(np.full(len(pos), row, np.int64))
        cols.append(pos)
        vals.append(w)
    if not rows:
        return sp.csr_matrix(np.zeros((0, len(item_ids)), np.float32))
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(queries), len(item_ids)),
        dtype=np.float32,
    )


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
    return compress(m)


def compress(rows: sp.csr_matrix) -> sp.csr_matrix:
    """Net-positive weights only, compressed by log1p (as ``preference_matrix`` does)."""
    r = rows.astype(np.float32, copy=True)
    r.data[r.data < 0] = 0
    r.eliminate_zeros()
    r.data = np.log1p(r.data)
    return r


def top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row (neighbour lists)."""
    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    if not len(counts) or counts.max(initial=0) <= k:
        return m.astype(np.float32)
    data, indices, indptr = [], [], [0]
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        vals, cols = m.data[lo:hi], m.indices[lo:hi]
        if len(vals) > k:
            part = np.argpartition(-vals, k - 1)[:k]
            vals, cols = vals[part], cols[part]
        data.append(vals)
        indices.append(cols)
        indptr.append(indptr[-1] + len(vals))
    return sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices), np.asarray(indptr)),
        shape=m.shape,
        dtype=np.float32,
    )


def normalise_rows(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (m / norms).astype(np.float32)


def no_opinion(n: int) -> np.ndarray:
    """A score array that recommends nothing."""
    return np.full(n, -np.inf, np.float32)
