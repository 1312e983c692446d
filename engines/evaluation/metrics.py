"""Top-k ranking metrics over full rankings (no sampled negatives).

Conventions follow the NGCF/LightGCN protocol: Recall@k = hits / |relevant|; NDCG@k uses
binary gains and the ideal DCG of min(|relevant|, k) hits; MAP@k divides by
min(|relevant|, k). Every function takes one user's ranked list and relevant set; the
evaluator averages over users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _hits(ranked: Sequence[int], relevant: set[int], k: int) -> np.ndarray:
    return np.fromiter((1.0 if i in relevant else 0.0 for i in ranked[:k]), float)


def recall_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return float(_hits(ranked, relevant, k).sum() / len(relevant)) if relevant else 0.0


def precision_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    return float(_hits(ranked, relevant, k).sum() / k)


def ndcg_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    if not relevant:
        return 0.0
    hits = _hits(ranked, relevant, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = discounts[: min(len(relevant), k)].sum()
    return float((hits * discounts[: len(hits)]).sum() / ideal)


def average_precision_at_k(ranked: Sequence[int], relevant: set[int], k: int) -> float:
    if not relevant:
        return 0.0
    hits = _hits(ranked, relevant, k)
    if not hits.any():
        return 0.0
    precisions = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float((precisions * hits).sum() / min(len(relevant), k))


def coverage(recommended: Sequence[Sequence[int]], n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    seen = {i for lst in recommended for i in lst}
    return len(seen) / n_items if n_items else 0.0


def mean_popularity(recommended: Sequence[Sequence[int]], popularity: dict[int, float]) -> float:
    """Average training popularity of recommended items (higher = more popularity bias)."""
    values = [popularity.get(i, 0.0) for lst in recommended for i in lst]
    return float(np.mean(values)) if values else 0.0
