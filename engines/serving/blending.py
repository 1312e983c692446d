"""Merging the ranked lists of several algorithms into one, with explanations.

Normalisation: each algorithm's candidate scores are min-max scaled to [0, 1] over its own
candidate list (its best item gets 1, its worst 0; a list of equal scores gets 1 everywhere).
Raw scores of different algorithms live on unrelated scales (factor dot products, cosine
similarities, decayed counts); rescaling per list makes weights mean "how much this
algorithm's opinion counts". An item missing from an algorithm's list gets 0 from it.
The blended score is the weighted sum; the per-algorithm terms are the explanation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from engines.algorithm import Recommended
from engines.toolkit import positions


@dataclass(slots=True)  # not frozen: a frozen dataclass is built 3x slower, ~100 per list
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


@dataclass
class Pool:
    """Blended candidates, best first, as arrays: ``take`` builds the explained objects
    for the items actually returned (a calibrated list picks 20 of 100, say)."""

    ids: np.ndarray
    totals: np.ndarray
    parts: list[tuple[str, float, Recommended, np.ndarray]]

    def __len__(self) -> int:
        return len(self.ids)

    def take(
        self,
        picked: Sequence[int] | np.ndarray | None = None,
        causes: Mapping[str, Mapping[int, int]] | None = None,
    ) -> list[Blended]:
        """Items at ``picked`` positions of the pool (all, in order, when None), each with
        its per-algorithm contributions, largest first; ``causes`` (algorithm -> item ->
        history item) explains them when the ranked lists did not."""
        order = np.arange(len(self.ids)) if picked is None else np.asarray(picked, np.int64)
        ids = self.ids[order]
        chosen = [
            Blended(i, t) for i, t in zip(ids.tolist(), self.totals[order].tolist(), strict=True)
        ]
        at = {item: n for n, item in enumerate(ids.tolist())}
        returned = np.sort(ids)
        for name, weight, rec, norm in self.parts:
            because = (causes or {}).get(name) or rec.because
            # only the returned items' entries (a binary search: np.isin costs 4x as much)
            hits = np.flatnonzero(positions(returned, rec.ids)[1])
            for item, value in zip(rec.ids[hits].tolist(), norm[hits].tolist(), strict=True):
                chosen[at[item]].contributions.append(
                    Contribution(name, weight, value, because.get(item))
                )
        for b in chosen:
            b.contributions.sort(key=lambda c: -c.value)
        return chosen


def pool(results: dict[str, tuple[float, Recommended]], limit: int) -> Pool:
    """``results`` maps algorithm name to (weight, its list); the ``limit`` best items by
    weighted sum of normalised scores (totals computed with numpy over all candidates)."""
    parts = [
        (name, weight, rec, normalise(rec.scores))
        for name, (weight, rec) in results.items()
        if len(rec.ids)
    ]
    if not parts:
        return Pool(np.empty(0, np.int64), np.empty(0, np.float64), [])
    ids = np.concatenate([rec.ids for _, _, rec, _ in parts]).astype(np.int64)
    values = np.concatenate([weight * norm for _, weight, _, norm in parts])
    unique, inverse = np.unique(ids, return_inverse=True)
    totals = np.bincount(inverse, weights=values, minlength=len(unique))
    # best first; ties by id so that results are deterministic
    order = np.lexsort((unique, -totals))[:limit]
    return Pool(unique[order], totals[order], parts)


def blend(results: dict[str, tuple[float, Recommended]], limit: int) -> list[Blended]:
    """The top ``limit`` of ``pool``, explained."""
    return pool(results, limit).take()
