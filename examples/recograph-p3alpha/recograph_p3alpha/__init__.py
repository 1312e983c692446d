"""P3alpha: item scores from three-step random walks on the user-item graph."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Recommended,
    TrainingData,
    hookimpl,
    training_field,
)


class P3alphaConfig(AlgorithmConfig):
    alpha: float = training_field(1.0, gt=0, description="Exponent of transition probabilities.")
    neighbours: int = training_field(200, ge=1, description="Kept per item.")
    normalise_scores: bool = Field(True, description="Divide by the history's total weight.")


class P3alpha(Algorithm):
    name = "p3alpha"
    description = "Random walks user -> item -> user -> item (P3alpha)."
    Config = P3alphaConfig

    config: P3alphaConfig

    def fit(self, data: TrainingData) -> None:
        binary = data.positive_matrix()
        binary.data[:] = 1.0
        p_ui = sp.diags(1 / np.maximum(binary.sum(axis=1).A1, 1)) @ binary
        p_iu = sp.diags(1 / np.maximum(binary.sum(axis=0).A1, 1)) @ binary.T
        a = self.config.alpha
        p_ui.data **= a
        p_iu = p_iu.tocsr()
        p_iu.data **= a
        sim = (p_iu @ p_ui).tocsr()
        sim.setdiag(0)
        sim.eliminate_zeros()
        self.similarity = _top_k(sim, self.config.neighbours)
        self.item_ids = data.item_ids.copy()
        self.fitted = True

    def recommend(self, query: Query, limit: int, exclude: np.ndarray | None = None,
                  candidates: np.ndarray | None = None) -> Recommended:
        liked = query.positive_items()
        pos = np.searchsorted(self.item_ids, list(liked))
        ok = [p < len(self.item_ids) and self.item_ids[p] == i
              for p, i in zip(pos, liked, strict=True)]
        pos = pos[np.array(ok, dtype=bool)] if len(pos) else pos
        if not len(pos):
            return Recommended.empty()
        scores = np.asarray(self.similarity[pos].sum(axis=0)).ravel()
        if self.config.normalise_scores:
            scores = scores / len(pos)
        keep = scores > 0
        if exclude is not None:
            keep &= ~np.isin(self.item_ids, exclude)
        if candidates is not None:
            keep &= np.isin(self.item_ids, candidates)
        idx = np.flatnonzero(keep)
        top = idx[np.argsort(-scores[idx], kind="stable")[:limit]]
        return Recommended(self.item_ids[top], scores[top].astype(np.float32))

    def state(self) -> dict[str, np.ndarray]:
        s = self.similarity
        return {"item_ids": self.item_ids, "data": s.data, "indices": s.indices,
                "indptr": s.indptr}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        n = len(self.item_ids)
        self.similarity = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                        shape=(n, n))


def _top_k(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    rows, cols, vals = [], [], []
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        v, c = m.data[lo:hi], m.indices[lo:hi]
        if len(v) > k:
            keep = np.argpartition(-v, k - 1)[:k]
            v, c = v[keep], c[keep]
        rows.append(np.full(len(v), r))
        cols.append(c)
        vals.append(v)
    if not rows:
        return sp.csr_matrix(m.shape, dtype=np.float32)
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=m.shape, dtype=np.float32)


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [P3alpha]
