"""Reference models for evaluation (not plugins): most-popular, and ``implicit``'s ALS with
the library's default settings, as a team rolling its own service would use it."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from engines.algorithm import Algorithm, Query, Recommended, best, mask_positions
from engines.data import TrainingData


def _top_rows(scores: np.ndarray, seen: sp.csr_matrix, k: int) -> list[list[int]]:
    scores = scores.copy()
    coo = seen.tocoo()  # explicit zeros too: a net-zero event is still seen
    rows, cols = coo.row, coo.col
    scores[rows, cols] = -np.inf
    k = min(k, scores.shape[1] - 1)
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable")
    return np.take_along_axis(top, order, 1).tolist()


class MostPopular(Algorithm):
    name = "most_popular"
    description = "Items with the most positive events in training."

    def fit(self, data: TrainingData) -> None:
        self.item_ids = data.item_ids
        self.counts = np.asarray((data.positive_matrix() > 0).sum(axis=0)).ravel()
        self.fitted = True

    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Recommended:
        scores = self.counts.astype(np.float32)
        top = best(scores, mask_positions(self.item_ids, exclude, candidates), limit)
        return Recommended(self.item_ids[top], scores[top])

    def rank_batch(self, history: sp.csr_matrix, k: int) -> list[list[int]]:
        scores = np.tile(self.counts.astype(np.float32), (history.shape[0], 1))
        return [self.item_ids[r].tolist() for r in _top_rows(scores, history, k)]


class ImplicitAlsDefaults(Algorithm):
    name = "implicit_als_defaults"
    description = "implicit.als.AlternatingLeastSquares() with the library's defaults."

    def fit(self, data: TrainingData) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        with threadpool_limits(1, "blas"):
            self.model = AlternatingLeastSquares(random_state=42)
            self.model.fit(data.positive_matrix(), show_progress=False)
        self.item_ids = data.item_ids
        self.fitted = True

    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Recommended:
        row = np.zeros(len(self.item_ids), np.float32)
        for item, w in query.positive_items().items():
            pos = np.searchsorted(self.item_ids, item)
            if pos < len(self.item_ids) and self.item_ids[pos] == item:
                row[pos] = w
        ids, scores = self.model.recommend(
            0, sp.csr_matrix(row), N=limit, recalculate_user=True, filter_already_liked_items=True
        )
        return Recommended(self.item_ids[ids], scores.astype(np.float32))

    def rank_batch(self, history: sp.csr_matrix, k: int) -> list[list[int]]:
        positive = history.copy()
        positive.data[positive.data < 0] = 0
        positive.eliminate_zeros()
        extra = int(np.diff(history.indptr).max(initial=0))
        ids, _ = self.model.recommend(
            np.arange(history.shape[0]),
            positive,
            N=min(k + extra, len(self.item_ids)),
            recalculate_user=True,
            filter_already_liked_items=True,
        )
        out = []
        for n, row in enumerate(ids):  # also drop seen items whose net weight is not positive
            seen = set(history.indices[history.indptr[n] : history.indptr[n + 1]].tolist())
            out.append([int(self.item_ids[i]) for i in row if i not in seen][:k])
        return out
