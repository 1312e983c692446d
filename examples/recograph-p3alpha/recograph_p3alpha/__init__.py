"""P3alpha: item scores from three-step random walks on the user-item graph.

A complete third-party plugin: it learns in ``fit`` and scores in ``score``; the host does
candidate filtering, exclusions, top-k selection and blending."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Scores,
    TrainingData,
    history_arrays,
    history_matrix,
    hookimpl,
    top_per_row,
    training_field,
)

#: this plugin's section of RECOGRAPH_PLUGIN_CONFIG (``{"plugins": {"p3alpha": {...}}}``)
SETTINGS: dict[str, Any] = {}


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
        self.similarity = top_per_row(sim, self.config.neighbours)
        self.item_ids = data.item_ids.copy()
        self.fitted = True

    def score(self, query: Query) -> Scores | None:
        _, w = history_arrays(query, self.item_ids)
        if not (w > 0).any():
            return None
        return self.score_batch([query])[0]

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        liked = (history_matrix(queries, self.item_ids) > 0).astype(np.float32)
        scores = np.asarray((liked @ self.similarity).todense(), dtype=np.float32)
        counts = np.asarray(liked.sum(axis=1)).ravel()
        if self.config.normalise_scores:
            scores /= np.maximum(counts, 1)[:, None]
        scores[scores <= 0] = -np.inf
        scores[counts == 0] = -np.inf
        return scores

    def state(self) -> dict[str, np.ndarray]:
        s = self.similarity
        return {"item_ids": self.item_ids, "data": s.data, "indices": s.indices,
                "indptr": s.indptr}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        n = len(self.item_ids)
        self.similarity = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                                        shape=(n, n))


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [P3alpha]


@hookimpl
def plugin_configured(config: Mapping[str, Any]) -> None:
    SETTINGS.clear()
    SETTINGS.update(config)
