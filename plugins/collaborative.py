"""Collaborative filtering: implicit-feedback matrix factorisation (ALS via ``implicit``)
with request-time fold-in, so a user's newest events count without retraining."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from threadpoolctl import threadpool_limits

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Recommended,
    TrainingData,
    hookimpl,
    training_field,
)
from plugins._common import best, decayed, history_arrays, mask_positions


class CollaborativeConfig(AlgorithmConfig):
    factors: int = training_field(64, ge=2, le=1024, description="Latent dimensions.")
    regularization: float = training_field(0.5, ge=0, description="L2 penalty on factors.")
    iterations: int = training_field(15, ge=1, le=200, description="ALS sweeps.")
    alpha: float = training_field(
        2.0, gt=0, description="Confidence per unit of interaction weight."
    )
    confidence: Literal["linear", "log"] = training_field(
        "log", description="How summed weights become confidence: alpha*w or alpha*log1p(w)."
    )
    half_life_days: float | None = training_field(
        None, gt=0, description="Age at which an event counts half; None: no time decay."
    )
    random_state: int = training_field(42)


class Collaborative(Algorithm):
    name = "collaborative"
    description = "Implicit-feedback ALS matrix factorisation with real-time fold-in."
    Config = CollaborativeConfig

    config: CollaborativeConfig

    def _confidence(self, values: np.ndarray) -> np.ndarray:
        c = self.config
        out = c.alpha * (np.log1p(values) if c.confidence == "log" else values)
        return out.astype(np.float32)

    def fit(self, data: TrainingData) -> None:
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares

        c = self.config
        weights = decayed(data.event_weights, data.event_times, data.now, c.half_life_days)
        m = sp.csr_matrix(
            (weights, (data.event_users, data.event_items)),
            shape=(data.n_users, data.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        m.data[m.data < 0] = 0
        m.eliminate_zeros()
        m.data = self._confidence(m.data)
        if m.nnz:
            with threadpool_limits(1, "blas"):  # implicit parallelises itself
                model = AlternatingLeastSquares(
                    factors=c.factors,
                    regularization=c.regularization,
                    iterations=c.iterations,
                    random_state=c.random_state,
                )
                model.fit(m, show_progress=False)
            self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        else:
            self.item_factors = np.zeros((data.n_items, c.factors), dtype=np.float32)
        self.item_ids = data.item_ids.copy()
        self._prepare()
        self.fitted = True

    def _prepare(self) -> None:
        y = self.item_factors
        self.gram = (y.T @ y).astype(np.float64)  # YᵀY, shared by every fold-in

    def user_vector(self, query: Query) -> np.ndarray | None:
        """Least-squares user factors for the query's history (the ALS user step)."""
        pos, w = history_arrays(query, self.item_ids, self.config.half_life_days)
        pos, w = pos[w > 0], w[w > 0]
        if not len(pos):
            return None
        conf = self._confidence(w).astype(np.float64)
        y = self.item_factors[pos].astype(np.float64)
        a = self.gram + (y.T * (conf - 1.0)) @ y
        a[np.diag_indices_from(a)] += self.config.regularization
        b = (y * conf[:, None]).sum(axis=0)
        return np.linalg.solve(a, b).astype(np.float32)

    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Recommended:
        user = self.user_vector(query)
        if user is None:
            return Recommended.empty()
        scores = self.item_factors @ user
        top = best(scores, mask_positions(self.item_ids, exclude, candidates), limit)
        because = self._because(query, top)
        return Recommended(self.item_ids[top], scores[top], because)

    def _because(self, query: Query, top: np.ndarray) -> dict[int, int]:
        """For each recommended item, the history item whose factors are most alike."""
        pos, w = history_arrays(query, self.item_ids)
        pos = pos[w > 0]
        if not len(pos) or not len(top):
            return {}
        sims = self.item_factors[top] @ self.item_factors[pos].T
        return {
            int(self.item_ids[t]): int(self.item_ids[pos[j]])
            for t, j in zip(top, sims.argmax(axis=1), strict=True)
        }

    def similar_items(
        self, item_id: int, limit: int, candidates: np.ndarray | None = None
    ) -> Recommended:
        pos = np.searchsorted(self.item_ids, item_id)
        if pos >= len(self.item_ids) or self.item_ids[pos] != item_id:
            return Recommended.empty()
        norms = np.linalg.norm(self.item_factors, axis=1)
        norms[norms == 0] = 1.0
        scores = (self.item_factors @ self.item_factors[pos]) / (norms * norms[pos])
        keep = mask_positions(self.item_ids, np.array([item_id]), candidates)
        top = best(scores, keep, limit)
        return Recommended(self.item_ids[top], scores[top])

    def state(self) -> dict[str, np.ndarray]:
        return {"item_ids": self.item_ids, "item_factors": self.item_factors}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        self.item_factors = arrays["item_factors"]
        self._prepare()


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [Collaborative]
