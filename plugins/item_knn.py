"""Item co-occurrence ("also viewed/bought together"): cosine similarity between items'
user vectors, top neighbours kept per item. Dislikes in a history push neighbours down."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Recommended,
    TrainingData,
    hookimpl,
    training_field,
)
from engines.algorithm import position
from plugins._common import best, history_arrays, mask_positions, preference_matrix


class ItemKnnConfig(AlgorithmConfig):
    neighbours: int = training_field(100, ge=1, le=2000, description="Neighbours kept per item.")
    shrinkage: float = training_field(10.0, ge=0, description="Damps similarities of rare pairs.")
    half_life_days: float | None = training_field(None, gt=0, description="Time decay of events.")
    min_support: int = training_field(1, ge=1, description="Least co-occurring users for a pair.")


class ItemKnn(Algorithm):
    name = "item_knn"
    description = "Item-to-item co-occurrence (cosine) neighbours: bought/viewed together."
    Config = ItemKnnConfig

    config: ItemKnnConfig

    def fit(self, data: TrainingData) -> None:
        c = self.config
        m = preference_matrix(data, c.half_life_days)
        binary = m.copy()
        binary.data[:] = 1.0
        cooc = (m.T @ m).tocsr()  # weighted co-occurrence
        support = (binary.T @ binary).tocsr()
        cooc.sort_indices()
        support.sort_indices()
        # m and binary share a sparsity pattern, so do their products: the data align
        assert np.array_equal(cooc.indptr, support.indptr)
        norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=0)).ravel())
        norms[norms == 0] = 1.0
        rows = np.repeat(np.arange(data.n_items), np.diff(cooc.indptr))
        cols = cooc.indices
        sup = support.data
        sims = cooc.data / (norms[rows] * norms[cols]) * (sup / (sup + c.shrinkage))
        keep = (rows != cols) & (sup >= c.min_support)
        full = sp.csr_matrix(
            (sims[keep], (rows[keep], cols[keep])),
            shape=(data.n_items, data.n_items),
            dtype=np.float32,
        )
        self.similarity = _top_per_row(full, c.neighbours)
        self.item_ids = data.item_ids.copy()
        self.fitted = True

    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Recommended:
        pos, w = history_arrays(query, self.item_ids, self.config.half_life_days)
        if not len(pos):
            return Recommended.empty()
        rows = self.similarity[pos]  # (history, items)
        contrib = rows.multiply(w[:, None]).tocsc()
        scores = np.asarray(contrib.sum(axis=0)).ravel()
        touched = np.diff(contrib.indptr) > 0  # items some history item points to
        top = best(
            np.where(touched, scores, -np.inf),
            mask_positions(self.item_ids, exclude, candidates),
            limit,
        )
        because: dict[int, int] = {}
        if len(top):
            dense = contrib[:, top].toarray()
            for j, t in enumerate(top):
                because[int(self.item_ids[t])] = int(self.item_ids[pos[dense[:, j].argmax()]])
        return Recommended(self.item_ids[top], scores[top].astype(np.float32), because)

    def similar_items(
        self, item_id: int, limit: int, candidates: np.ndarray | None = None
    ) -> Recommended:
        pos = position(self.item_ids, item_id)
        if pos is None:
            return Recommended.empty()
        row = self.similarity[pos]
        scores = np.full(len(self.item_ids), -np.inf, dtype=np.float32)
        scores[row.indices] = row.data
        top = best(scores, mask_positions(self.item_ids, np.array([item_id]), candidates), limit)
        return Recommended(self.item_ids[top], scores[top])

    def state(self) -> dict[str, np.ndarray]:
        s = self.similarity
        return {"item_ids": self.item_ids, "data": s.data, "indices": s.indices, "indptr": s.indptr}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        n = len(self.item_ids)
        self.similarity = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n)
        )


def _top_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """Keep the ``k`` largest entries of each row."""
    m = m.tocsr()
    m.sort_indices()
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
        (
            np.concatenate(data) if data else np.empty(0, np.float32),
            np.concatenate(indices) if indices else np.empty(0, np.int32),
            np.asarray(indptr),
        ),
        shape=m.shape,
        dtype=np.float32,
    )


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [ItemKnn]
