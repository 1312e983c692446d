"""Cold start: for users with few events, popularity within the categories they touched plus
content similarity to what they touched; for users with none, plain recent popularity."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Scores,
    TrainingData,
    decayed,
    history_arrays,
    hookimpl,
    normalise_rows,
    training_field,
)
from plugins.embedders import HashingEmbedder


class ColdStartConfig(AlgorithmConfig):
    max_items: int = Field(5, ge=0, description="Users with more distinct items are skipped.")
    half_life_days: float = training_field(3650.0, gt=0, description="Decay of popularity.")
    category_boost: float = Field(0.0, ge=0, description="Weight of shared categories.")
    content_weight: float = Field(0.0, ge=0, description="Weight of content similarity.")


class ColdStart(Algorithm):
    name = "cold_start"
    description = "Popularity for new users, optionally tilted to their categories and content."
    Config = ColdStartConfig

    config: ColdStartConfig

    def fit(self, data: TrainingData) -> None:
        w = decayed(data.event_weights, data.event_times, data.now, self.config.half_life_days)
        pop = np.bincount(data.event_items, weights=np.maximum(w, 0), minlength=data.n_items)
        top = float(np.log1p(pop).max(initial=0.0))
        self._popularity = (np.log1p(pop) / max(top, 1e-9)).astype(np.float32)
        names = sorted({c for item in data.content for c in item.categories})
        index = {c: k for k, c in enumerate(names)}
        rows, cols = [], []
        for r, item in enumerate(data.content):
            for c in item.categories:
                rows.append(r)
                cols.append(index[c])
        self.categories = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(data.n_items, len(names))
        )
        self.vectors = normalise_rows(data.content_vectors(HashingEmbedder)[1])
        self.item_ids = data.item_ids.copy()
        self.fitted = True

    def _liked(self, query: Query) -> np.ndarray | None:
        """Positions the user liked; None for users with too many items to be cold."""
        pos, w = history_arrays(query, self.item_ids)
        if len(pos) > self.config.max_items:
            return None
        return pos[w > 0]

    def score(self, query: Query) -> Scores | None:
        liked = self._liked(query)
        if liked is None:
            return None
        if not len(liked):
            return self._popularity
        taste = np.asarray(self.categories[liked].sum(axis=0)).ravel()
        if taste.sum() > 0:
            taste /= taste.sum()
        affinity = self.categories @ taste  # share of the user's categories an item has
        content = (self.vectors @ self.vectors[liked].T).max(axis=1)
        return (
            self._popularity * (1 + self.config.category_boost * affinity)
            + self.config.content_weight * content
        ).astype(np.float32)

    def explain(self, query: Query, positions: np.ndarray) -> np.ndarray | None:
        liked = self._liked(query)
        if liked is None or not len(liked):
            return None
        sims = self.vectors[positions] @ self.vectors[liked].T
        return self.item_ids[liked[sims.argmax(axis=1)]]

    def popularity(self) -> Scores | None:
        return self._popularity

    def state(self) -> dict[str, np.ndarray]:
        c = self.categories
        return {
            "item_ids": self.item_ids,
            "popularity": self._popularity,
            "vectors": self.vectors,
            "c_data": c.data,
            "c_indices": c.indices,
            "c_indptr": c.indptr,
            "c_shape": np.array(c.shape),
        }

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        self._popularity = arrays["popularity"]
        self.vectors = arrays["vectors"]
        self.categories = sp.csr_matrix(
            (arrays["c_data"], arrays["c_indices"], arrays["c_indptr"]),
            shape=tuple(arrays["c_shape"]),
        )


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [ColdStart]
