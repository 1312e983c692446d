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
    Recommended,
    TrainingData,
    hookimpl,
    training_field,
)
from engines.embedders import normalise_rows
from plugins._common import best, decayed, history_arrays, mask_positions
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
        self.popularity = (np.log1p(pop) / max(top, 1e-9)).astype(np.float32)
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
        embed = data.embed or HashingEmbedder().embed_items
        self.vectors = normalise_rows(np.asarray(embed(data.content), dtype=np.float32))
        self.item_ids = data.item_ids.copy()
        self.fitted = True

    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Recommended:
        pos, w = history_arrays(query, self.item_ids)
        if len(pos) > self.config.max_items:
            return Recommended.empty()
        keep = mask_positions(self.item_ids, exclude, candidates)
        liked = pos[w > 0]
        if not len(liked):
            top = best(self.popularity, keep, limit)
            return Recommended(self.item_ids[top], self.popularity[top])
        taste = np.asarray(self.categories[liked].sum(axis=0)).ravel()
        if taste.sum() > 0:
            taste /= taste.sum()
        affinity = self.categories @ taste  # share of the user's categories an item has
        sims = self.vectors @ self.vectors[liked].T
        content = sims.max(axis=1)
        scores = (
            self.popularity * (1 + self.config.category_boost * affinity)
            + self.config.content_weight * content
        ).astype(np.float32)
        top = best(scores, keep, limit)
        because = {int(self.item_ids[t]): int(self.item_ids[liked[sims[t].argmax()]]) for t in top}
        return Recommended(self.item_ids[top], scores[top], because)

    def state(self) -> dict[str, np.ndarray]:
        c = self.categories
        return {
            "item_ids": self.item_ids,
            "popularity": self.popularity,
            "vectors": self.vectors,
            "c_data": c.data,
            "c_indices": c.indices,
            "c_indptr": c.indptr,
            "c_shape": np.array(c.shape),
        }

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        self.popularity = arrays["popularity"]
        self.vectors = arrays["vectors"]
        self.categories = sp.csr_matrix(
            (arrays["c_data"], arrays["c_indices"], arrays["c_indptr"]),
            shape=tuple(arrays["c_shape"]),
        )


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [ColdStart]
