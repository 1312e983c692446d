"""Content-based recommendations: item vectors from an embedder (feature hashing by default),
a user profile from the items they touched (dislikes subtract), cosine similarity. Vectors
are also written to pgvector for ``search`` and filtered similarity queries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pydantic import Field

from engines import (
    Algorithm,
    AlgorithmConfig,
    Query,
    Scores,
    TrainingData,
    history_arrays,
    hookimpl,
    normalise_rows,
)
from plugins.embedders import HashingEmbedder, TfidfEmbedder

#: explanations look for the cause among the user's most weighty items
EXPLAIN_FROM = 100


class ContentConfig(AlgorithmConfig):
    half_life_days: float | None = Field(
        None, gt=0, description="Older events weigh less in the user profile."
    )
    history_limit: int = Field(200, ge=1, description="Most recent items in the profile.")


class Content(Algorithm):
    name = "content"
    description = "Similarity of item content (title, text, categories, tags, attributes)."
    Config = ContentConfig
    scores_cold_items = True
    #: events per item in the training data (which items are cold)
    counts: np.ndarray | None = None

    config: ContentConfig
    space = "content_hashing"
    #: the fitted embedder of the catalogue (to embed search texts alike), if fitted
    embedder: TfidfEmbedder | None = None

    def fit(self, data: TrainingData) -> None:
        embedder, vectors = data.content_vectors(HashingEmbedder)
        self.vectors = normalise_rows(vectors)
        self.item_ids = data.item_ids.copy()
        self.counts = np.bincount(data.event_items, minlength=len(self.item_ids)).astype(np.int32)
        self.space = embedder.space
        self.embedder = embedder if isinstance(embedder, TfidfEmbedder) else None
        self._prepare()
        self.fitted = True

    def _prepare(self) -> None:
        # a catalogue without content (ids only) has nothing to compare: answer nothing
        self.has_content = bool(len(self.vectors) and np.any(self.vectors))
        dims = self.vectors.shape[1] if self.vectors.ndim == 2 else 0
        self.vectors_t = np.ascontiguousarray(self.vectors.reshape(-1, dims).T)

    def text_vector(self, text: str) -> tuple[str, np.ndarray] | None:
        if self.embedder is None:
            return None
        return self.space, self.embedder.embed_text(text)

    def profile(self, query: Query) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """(unit profile vector, history positions, their weights)."""
        pos, w = history_arrays(query, self.item_ids, self.config.half_life_days)
        if not len(pos):
            return None
        if len(pos) > self.config.history_limit:
            keep = np.argsort(-np.abs(w))[: self.config.history_limit]
            pos, w = pos[keep], w[keep]
        vec = w.astype(self.vectors.dtype) @ self.vectors[pos]  # one product, no temporary
        if not np.any(vec):
            return None
        return vec / np.linalg.norm(vec), pos, w

    def score(self, query: Query) -> Scores | None:
        if not self.has_content:
            return None
        prof = self.profile(query)
        return None if prof is None else self.vectors @ prof[0]

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        # the same profiles as ``score`` (its history limit included), one product for all
        dims = self.vectors.shape[1] if self.vectors.ndim == 2 else 0
        profiles = np.zeros((len(queries), dims), np.float32)
        answered = np.zeros(len(queries), bool)
        if self.has_content:
            for n, query in enumerate(queries):
                prof = self.profile(query)
                if prof is not None:
                    profiles[n], answered[n] = prof[0], True
        # against items-minor vectors: BLAS ran 2.4x slower on the transposed view
        scores = profiles @ self.vectors_t
        scores[~answered] = -np.inf
        return scores.astype(np.float32, copy=False)

    def explain(self, query: Query, positions: np.ndarray) -> np.ndarray | None:
        prof = self.profile(query)
        if prof is None:
            return None
        _, pos, w = prof
        liked = pos[w > 0]
        if not len(liked):
            return None
        liked = liked[np.argsort(-w[w > 0])[:EXPLAIN_FROM]]
        sims = self.vectors[positions] @ self.vectors[liked].T
        return self.item_ids[liked[sims.argmax(axis=1)]]

    def similar(self, position: int) -> Scores | None:
        if not self.has_content:
            return None
        return self.vectors @ self.vectors[position]

    def item_counts(self) -> Scores | None:
        return self.counts

    def item_vectors(self) -> tuple[str, np.ndarray, np.ndarray] | None:
        return self.space, self.item_ids, self.vectors

    def state(self) -> dict[str, np.ndarray]:
        out = {"item_ids": self.item_ids, "vectors": self.vectors, "space": np.array(self.space)}
        if self.counts is not None:
            out["counts"] = self.counts
        if self.embedder is not None:
            out |= {f"embedder_{k}": v for k, v in self.embedder.state().items()}
        return out

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.item_ids = arrays["item_ids"]
        self.vectors = arrays["vectors"]
        self.space = str(arrays["space"])
        self.counts = arrays.get("counts")  # models stored before counts were kept: None
        fitted = {k[len("embedder_") :]: v for k, v in arrays.items() if k.startswith("embedder_")}
        self.embedder = None
        if fitted:
            self.embedder = TfidfEmbedder()
            self.embedder.set_state(fitted)
        self._prepare()


@hookimpl
def register_algorithms() -> list[type[Algorithm]]:
    return [Content]
