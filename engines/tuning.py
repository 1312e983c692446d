"""Choosing an algorithm's settings on the tenant's own data at training time: a validation
split carved from its events (never a test file), full-ranking metrics on it, and a
coordinate search under a time budget. Plugins use these through ``engines``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp


@dataclass(frozen=True)
class Holdout:
    """``train`` is the preference matrix with a share of some users' items held out;
    ``users`` are those users (rows) and ``held`` their held-out items (a CSR row each)."""

    train: sp.csr_matrix
    users: np.ndarray
    held: sp.csr_matrix


def holdout_split(
    pref: sp.csr_matrix,
    fraction: float = 0.2,
    *,
    max_users: int = 2000,
    max_cells: int = 40_000_000,
    min_users: int = 50,
    seed: int = 0,
) -> Holdout | None:
    """Hold out ``fraction`` of the items (at least one) of up to ``max_users`` users with
    two or more, chosen at random, as the LightGCN-style splits do; the number of users is
    also bounded so that their scores (users × items) stay under ``max_cells``. None when
    too few users qualify to tell settings apart, or the catalogue is too large for even
    ``min_users`` of them."""
    pref = pref.tocsr()
    n_items = pref.shape[1]
    counts = np.diff(pref.indptr)
    eligible = np.flatnonzero(counts >= 2)
    n = min(len(eligible), max_users, max_cells // max(n_items, 1))
    if n < min_users:
        return None
    rng = np.random.default_rng(seed)
    users = np.sort(rng.choice(eligible, n, replace=False))
    keep = np.ones(pref.nnz, dtype=bool)
    held_rows, held_cols = [], []
    for row, u in enumerate(users):
        lo, hi = pref.indptr[u], pref.indptr[u + 1]
        k = max(1, round(float(fraction * (hi - lo))))
        picked = lo + rng.choice(hi - lo, k, replace=False)
        keep[picked] = False
        held_rows.append(np.full(k, row))
        held_cols.append(pref.indices[picked])
    data = np.where(keep, pref.data, 0).astype(pref.dtype)
    train = sp.csr_matrix((data, pref.indices.copy(), pref.indptr.copy()), shape=pref.shape)
    train.eliminate_zeros()
    rows, cols = np.concatenate(held_rows), np.concatenate(held_cols)
    held = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, n_items))
    held.sort_indices()
    return Holdout(train, users, held)


def ranking_metrics(
    scores: np.ndarray,
    seen: sp.csr_matrix,
    held: sp.csr_matrix,
    k: int = 20,
    *,
    overwrite: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per user (row): Recall@k (hits / held-out items, as LightGCN reports it) and
    NDCG@k of the full ranking of ``scores``, with ``seen`` items excluded (in place when
    ``overwrite``). ``held`` has sorted indices."""
    if not overwrite:
        scores = scores.copy()
    rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
    scores[rows, seen.indices] = -np.inf
    k = min(k, scores.shape[1])
    # the k best of each row, then ordered (no negated copy of the whole array)
    top = np.argpartition(scores, scores.shape[1] - k, axis=1)[:, -k:]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    top = np.take_along_axis(top, order, axis=1)
    n_held = np.diff(held.indptr)
    hits = np.zeros(top.shape, dtype=bool)
    for r in range(top.shape[0]):  # sorted held-out items per row: a binary search each
        items = held.indices[held.indptr[r] : held.indptr[r + 1]]
        if len(items):
            at = np.searchsorted(items, top[r]).clip(max=len(items) - 1)
            hits[r] = items[at] == top[r]
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_held, k) - 1]
    recall = hits.sum(axis=1) / np.maximum(n_held, 1)
    ndcg = (hits * discounts).sum(axis=1) / ideal
    return recall, ndcg


@dataclass
class Search:
    """A coordinate search: each round tries every value of one setting with the others
    at their best so far, until the settings stop changing or the time is up.

    ``evaluate`` returns a metric per validation user. A candidate replaces the best only
    when it wins a paired comparison over the same users by ``min_t`` standard errors:
    with a few hundred users, smaller gains are mostly noise, and chasing them moved
    settings away from better ones."""

    evaluate: Callable[[Mapping[str, Any]], np.ndarray]
    deadline: float
    best: dict[str, Any]
    min_t: float = 2.0
    tried: dict[tuple[tuple[str, Any], ...], np.ndarray] = field(default_factory=dict)

    def per_user(self, settings: Mapping[str, Any]) -> np.ndarray:
        key = tuple(sorted(settings.items()))
        if key not in self.tried:
            self.tried[key] = np.asarray(self.evaluate(settings), dtype=np.float64)
        return self.tried[key]

    def score(self, settings: Mapping[str, Any]) -> float:
        return float(self.per_user(settings).mean())

    def better(self, candidate: np.ndarray, incumbent: np.ndarray) -> bool:
        diff = candidate - incumbent
        if len(diff) < 2 or diff.mean() <= 0:
            return False
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        return bool(se == 0 or diff.mean() > self.min_t * se)

    def run(self, grid: Mapping[str, Sequence[Any]], rounds: int = 2) -> dict[str, Any]:
        incumbent = self.per_user(self.best)
        for _ in range(rounds):
            changed = False
            for name, values in grid.items():
                for value in values:
                    if time.monotonic() > self.deadline:
                        return self.best
                    candidate = {**self.best, name: value}
                    scores = self.per_user(candidate)
                    if self.better(scores, incumbent):
                        incumbent, self.best, changed = scores, candidate, True
            if not changed:
                break
        return self.best

    @property
    def best_score(self) -> float:
        return self.score(self.best)

    def report(self, start: Mapping[str, Any], users: int, started: float) -> dict[str, Any]:
        """What a model records of its search (shown in ``algorithms { metrics }``)."""
        return {
            "chosen": self.best,
            "validation_recall@20": round(self.best_score, 4),
            "validation_recall@20_before": round(self.score(start), 4),
            "validation_users": users,
            "settings_tried": len(self.tried),
            "seconds": round(time.monotonic() - started, 2),
        }
