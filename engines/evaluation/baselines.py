"""Reference models for evaluation (not plugins): most-popular, and ``implicit``'s ALS with
the library's default settings, as a team rolling its own service would use it."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from engines.algorithm import Algorithm, Query, Scores
from engines.data import TrainingData
from engines.toolkit import compress, history_matrix


class MostPopular(Algorithm):
    name = "most_popular"
    description = "Items with the most positive events in training."

    def fit(self, data: TrainingData) -> None:
        self.item_ids = data.item_ids
        self.counts = np.asarray((data.positive_matrix() > 0).sum(axis=0)).ravel()
        self.fitted = True

    def score(self, query: Query) -> Scores | None:
        return self.counts.astype(np.float32)

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        return np.tile(self.counts.astype(np.float32), (len(queries), 1))


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

    def score(self, query: Query) -> Scores | None:
        return self.score_batch([query])[0]

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        """The library's own user step (``recalculate_user``) on each history, then dot
        products with every item."""
        history = history_matrix(queries, self.item_ids)
        positive = compress(history)
        positive.data = np.expm1(positive.data)  # raw positive weights, as in training
        users = self.model.recalculate_user(np.arange(len(queries)), positive)
        scores = np.asarray(users @ self.model.item_factors.T, dtype=np.float32)
        scores[np.diff(positive.indptr) == 0] = -np.inf
        return scores
