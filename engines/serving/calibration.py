"""Calibrated re-ranking (Steck, "Calibrated Recommendations", RecSys 2018): a list whose mix
of categories follows the mix of the user's history, so a user whose history is mostly
animation is not shown only the popular live-action films the algorithms agree on.

Greedy, as in the paper: each step adds the item maximising
``(1 - λ) · Σ relevance − λ · KL(p ‖ q̃)``, where ``p`` is the history's category
distribution, ``q`` the list's, and ``q̃ = (1 − α) q + α p`` keeps the divergence finite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Steck's smoothing of the list distribution
ALPHA = 0.01


def category_shares(
    items: Sequence[int], weights: Sequence[float], categories: Mapping[int, Sequence[str]]
) -> dict[str, float]:
    """p(c): each item spreads its (positive) weight evenly over its categories."""
    shares: dict[str, float] = {}
    for item, weight in zip(items, weights, strict=True):
        cats = categories.get(item) or ()
        if weight <= 0 or not cats:
            continue
        for c in cats:
            shares[c] = shares.get(c, 0.0) + weight / len(cats)
    total = sum(shares.values())
    return {c: v / total for c, v in shares.items()} if total > 0 else {}


def miscalibration(
    target: Mapping[str, float], items: Sequence[int], categories: Mapping[int, Sequence[str]]
) -> float:
    """KL(p ‖ q̃) of a list against the target shares (0 = perfectly calibrated)."""
    got = category_shares(items, [1.0] * len(items), categories)
    kl = 0.0
    for c, p in target.items():
        q = (1 - ALPHA) * got.get(c, 0.0) + ALPHA * p
        kl += p * np.log(p / q)
    return float(kl)


def calibrate(
    candidates: Sequence[int],
    relevance: np.ndarray,
    categories: Mapping[int, Sequence[str]],
    target: Mapping[str, float],
    strength: float,
    limit: int,
) -> list[int]:
    """Indices into ``candidates`` (best first) of a calibrated list of ``limit``;
    ``relevance`` is scaled to [0, 1] here. Without a target, the original order."""
    n = len(candidates)
    if not target or strength <= 0 or n == 0:
        return list(range(min(limit, n)))
    # only the target's categories enter the divergence (those with a share); the others
    # only dilute an item's share (through 1 / its number of categories). Each candidate is
    # its few (category, share) pairs, by candidate: a sparse row
    names = sorted(c for c, v in target.items() if v > 0)
    column = {c: k for k, c in enumerate(names)}
    p = np.array([target[c] for c in names])
    starts = [0]
    cols: list[int] = []
    vals: list[float] = []
    for item in candidates:
        cats = categories.get(item) or ()
        for c in dict.fromkeys(cats):  # a category listed twice counts once, as before
            k = column.get(c)
            if k is not None:
                cols.append(k)
                vals.append(1.0 / len(cats))
        starts.append(len(cols))
    owner = np.repeat(np.arange(n), np.diff(starts))
    col = np.asarray(cols, np.intp)
    val = np.asarray(vals, np.float64)
    rel = np.asarray(relevance, dtype=np.float64)
    top = rel.max() if n else 0.0
    rel = rel / top if top > 0 else np.zeros(n)
    # KL(p ‖ q̃) = Σ p log p − Σ p log q̃, and the list's relevance so far is the same for
    # every candidate: a step's argmax is that of (1 − λ) rel + λ Σ p log q̃. A candidate
    # changes q̃ only in its own categories, so Σ p log q̃ is a constant plus, over those,
    # p · log(1 + share · its share / q̃ without it): a few operations over the nonzeros
    gain = (1 - strength) * rel
    weight = strength * p[col]
    smoothing = ALPHA * p
    chosen: list[int] = []
    mix = np.zeros(len(p))
    for step in range(min(limit, n)):
        share = (1 - ALPHA) / (step + 1)
        without = (share * mix + smoothing)[col]
        terms = np.log1p(share * val / without)
        terms *= weight
        best = int(np.argmax(gain + np.bincount(owner, terms, minlength=n)))
        chosen.append(best)
        gain[best] = -np.inf  # taken
        lo, hi = starts[best], starts[best + 1]
        mix[col[lo:hi]] += val[lo:hi]
    return chosen
