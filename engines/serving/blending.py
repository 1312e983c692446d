"""Merging the ranked lists of several algorithms into one, with explanations.

Normalisation: each algorithm's candidate scores are min-max scaled to [0, 1] over its own
candidate list (its best item gets 1, its worst 0; a list of equal scores gets 1 everywhere).
Raw scores of different algorithms live on unrelated scales (factor dot products, cosine
similarities, decayed counts); rescaling per list makes weights mean "how much this
algorithm's opinion counts". An item missing from an algorithm's list gets 0 from it.
The blended score is the weighted sum; the per-algorithm terms are the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engines.algorithm import Recommended


@dataclass(frozen=True, slots=True)
class Contribution:
    algorithm: str
    weight: float
    normalised: float
    because_item: int | None = None

    @property
    def value(self) -> float:
        return self.weight * self.normalised


@dataclass(slots=True)
class Blended:
    item_id: int
    score: float
    contributions: list[Contribution] = field(default_factory=list)


def normalise(scores: np.ndarray) -> np.ndarray:
    if not len(scores):
        return scores.astype(np.float32)
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-12:
        return np.ones_like(scores, dtype=np.float32)
    return ((scores - lo) / (hi - lo)).astype(np.float32)


def blend(results: dict[str, tuple[float, Recommended]], limit: int) -> list[Blended]:
    """``results`` maps algorithm name to (weight, its list); returns the top ``limit``.

    Totals are computed with numpy over all candidates; explanations are built for the
    returned items only."""
    parts = [
        (name, weight, rec, normalise(rec.scores))
        for name, (weight, rec) in results.items()
        if len(rec.ids)
    ]
    if not parts:
        return []
    ids = np.concatenate([rec.ids for _, _, rec, _ in parts]).astype(np.int64)
    values = np.concatenate([weight * norm for _, weight, _, norm in parts])
    unique, inverse = np.unique(ids, return_inverse=True)
    totals = np.bincount(inverse, weights=values, minlength=len(unique))
    # best first; ties by id so that results are deterministic
    order = np.lexsort((unique, -totals))[:limit]
    chosen = {int(unique[i]): Blended(int(unique[i]), float(totals[i])) for i in order}
    final = unique[order]
    for name, weight, rec, norm in parts:
        hits = np.flatnonzero(np.isin(rec.ids, final))  # only the returned items' entries
        for item, value in zip(rec.ids[hits].tolist(), norm[hits].tolist(), strict=True):
            chosen[item].contributions.append(
                Contribution(name, weight, value, rec.because.get(item))
            )
    ranked = [chosen[int(unique[i])] for i in order]
    for b in ranked:
        b.contributions.sort(key=lambda c: -c.value)
    return ranked
