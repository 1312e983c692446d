"""Diversity by maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998): a list that
does not show five near-copies of the same film.

Greedy: each step adds the candidate maximising ``(1 − λ) · relevance − λ · similarity to
the closest item already chosen``, with relevance scaled to [0, 1] over the candidates and
similarity the cosine of the items' vectors (the content model's, which every catalogue
has). λ = 0 keeps the ranking; λ = 1 picks the most different items regardless of
relevance. Intra-list diversity is one minus the mean pairwise cosine of a list."""

from __future__ import annotations

import numpy as np


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def mmr(relevance: np.ndarray, vectors: np.ndarray, strength: float, limit: int) -> list[int]:
    """Positions (best first) of a list of ``limit`` chosen from the candidates whose
    ``relevance`` and ``vectors`` (a row each) are given."""
    n = len(relevance)
    if n == 0 or strength <= 0:
        return list(range(min(limit, n)))
    rel = np.asarray(relevance, dtype=np.float64)
    lo, hi = rel.min(), rel.max()
    rel = (rel - lo) / (hi - lo) if hi > lo else np.ones(n)
    unit = unit_rows(np.asarray(vectors, dtype=np.float32))
    similarity = unit @ unit.T
    closest = np.full(n, -np.inf)  # similarity to the nearest chosen item
    taken = np.zeros(n, dtype=bool)
    chosen: list[int] = []
    for _ in range(min(limit, n)):
        penalty = np.where(np.isfinite(closest), closest, 0.0)
        objective = (1 - strength) * rel - strength * penalty
        objective[taken] = -np.inf
        best = int(np.argmax(objective))
        chosen.append(best)
        taken[best] = True
        closest = np.maximum(closest, similarity[best])
    return chosen


def intra_list_diversity(vectors: np.ndarray) -> float:
    """1 − the mean cosine similarity of the list's pairs (0 for fewer than two items)."""
    n = len(vectors)
    if n < 2:
        return 0.0
    unit = unit_rows(np.asarray(vectors, dtype=np.float64))
    sims = unit @ unit.T
    return float(1.0 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))
