"""Content-based recommendations: item vectors from an embedder (feature hashing by default),
a user profile from the items they touched (dislikes subtract), cosine similarity. Vectors
are also written to pgvector for ``search`` and filtered similarity queries."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from pydantic import Field

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Recommended,
    TrainingData,
    hookimpl,
)
from engines.algorithm import position
from engines.embedders import normalise_rows
from plugins._common import best, history_arrays, mask_positions
from plugins.embedders import HashingEmbedder


class ContentConfig(AlgorithmConfig):
    half_life_days: float | None = Field(
        None, gt=0, description="Older events weigh less in the user profile."
    )
    history_limit: int = Field(200, ge=1, description="Most recent items in the profile.")


class Content(Algorithm):
    name = "content"
    description = "Similarity of item content (title, text, categories, tags, attributes)."
    Config = ContentConfig

    config: ContentConfig
    space = "content_hashing"

    def fit(self, data: TrainingData) -> None:
        embed = data.embed or HashingEmbedder().embed_items
        self.vectors = normalise_rows(np.asarray(embed(data.content), dtype=np.float32))
        self.item_ids = data.item_ids.copy()
        self.space = data.embed_space if data.embed else HashingEmbedder.space_name()
        self.fitted = True

    def profile(self, query: Query) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        pos, w = history_arrays(query, self.item_ids, self.config.half_life_days)
        if not len(pos):
            return None
        if len(pos) > self.config.history_limit:
            keep = np.argsort(-np.abs(w))[: self.config.history_limit]
            pos, w = pos[keep], w[keep]
        vec = (self.vectors[pos] * w[:, None]).sum(axis=0)
        if not np.any(vec):
            return None
        return vec / np.linalg.norm(vec), pos, w

    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Recommended:
        prof = self.profile(query)
        if prof is None:
            return Recommended.empty()
        vec, pos, w = prof
        scores = self.vectors @ vec
        top = best(scores, mask_positions(self.item_ids, exclude, candidates), limit)
        because: dict[int, int] = {}
        liked = pos[w > 0]
        if len(top) and len(liked):
            sims = self.vectors[top] @ self.vectors[liked].T
            for t, j in zip(top, sims.argmax(axis=1), strict=True):
                because[int(self.item_ids[t])] = int(self.item_ids[liked[j]])
        return Recommended(self.item_ids[top], scores[top], because)

    def similar_items(
        self, item_id: int, limit: int, candidates: np.ndarray | None = None
    ) -> Recommended:
        pos = position(self.item_ids, item_id)
        if pos is None:
            return Recommended.empty()
        scores = self.vectors @ self.vectors[pos]
        top = best(scores, mask_positions(self.item_ids, np.array([item_id]), candidates), limit)
        return Recommended(self.item_ids[top], scores[top])

    def item_vectors(self) -> tuple[str, np.ndarray, np.ndarray] | None:
        return self.space, self.item_ids, self.vectors

    def state(self) -> dict[str, np.ndarray]:
        return {"item_ids": self.item_ids, "vectors": self.vectors, "space": np.array(self.space)}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        self.vectors = arrays["vectors"]
        self.space = str(arrays["space"])


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [Content]
