"""A base for algorithms that are a sparse items × items weight matrix (co-occurrence
neighbours, EASE, random walks): a history scores ``h @ W``; an item's row is its similar
items; the history item that contributes most explains each result. A subclass's ``fit``
sets ``item_ids`` and ``weights`` (CSR, float32) and calls ``_prepare``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from engines.algorithm import Algorithm, Query, Scores
from engines.toolkit import history_arrays, history_matrix, no_opinion


class ItemToItem(Algorithm):
    weights: sp.csr_matrix

    def half_life_days(self) -> float | None:
        """The time decay of history events when scoring (None: none)."""
        return None

    def _prepare(self) -> None:
        # rows of the transpose are "who points here": an explanation reads 20 short
        # rows, not the whole history's neighbourhoods
        self.pointed_from = self.weights.T.tocsr()

    def score(self, query: Query) -> Scores | None:
        if not len(query) or self.weights.nnz == 0:
            return None
        row = self.score_batch([query])[0]
        return row if np.isfinite(row).any() else None  # none of its items has weights

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        h = history_matrix(queries, self.item_ids, self.half_life_days())
        product = (h @ self.weights).tocsr()
        out = np.full(product.shape, -np.inf, np.float32)
        rows = np.repeat(np.arange(product.shape[0]), np.diff(product.indptr))
        out[rows, product.indices] = product.data
        return out

    def explain(self, query: Query, positions: np.ndarray) -> np.ndarray | None:
        pos, w = history_arrays(query, self.item_ids, self.half_life_days())
        if not len(pos) or self.weights.nnz == 0:
            return None
        contrib = self.pointed_from[positions][:, pos].toarray() * w[None, :]
        return self.item_ids[pos[contrib.argmax(axis=1)]]

    def similar(self, position: int) -> Scores | None:
        row = self.weights[position]
        if row.nnz == 0:
            return None
        scores = no_opinion(len(self.item_ids))
        scores[row.indices] = row.data
        return scores

    def state(self) -> dict[str, np.ndarray]:
        w = self.weights
        return {"item_ids": self.item_ids, "data": w.data, "indices": w.indices, "indptr": w.indptr}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        n = len(self.item_ids)
        self.weights = sp.csr_matrix(
            (arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n)
        )
        self._prepare()
