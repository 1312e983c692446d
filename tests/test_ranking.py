"""Ranking an algorithm's scores over the whole catalogue: the fast path (a threshold read
off a sample) must pick exactly what a full sort picks, ties by item order included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.serving.ranking import top_positions


def by_full_sort(scores: np.ndarray, keep: np.ndarray | None, limit: int) -> np.ndarray:
    valid = np.isfinite(scores) & (True if keep is None else keep)
    pos = np.flatnonzero(valid)
    return pos[np.lexsort((pos, -scores[pos]))][:limit]


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.sampled_from([1, 7, 300, 4096, 9742, 40_000]),
    shape=st.sampled_from(["uniform", "ties", "mostly-missing", "sorted", "nan", "skewed"]),
    masked=st.booleans(),
    limit=st.sampled_from([1, 20, 200, 600, 100_000]),
)
def test_the_top_of_a_catalogue_is_what_a_full_sort_finds(seed, n, shape, masked, limit):
    rng = np.random.default_rng(seed)
    scores = rng.random(n).astype(np.float32)
    if shape == "ties":
        scores = np.round(scores * 4) / 4
    elif shape == "mostly-missing":
        scores[rng.random(n) < 0.9] = -np.inf
    elif shape == "sorted":
        scores = np.sort(scores)
    elif shape == "nan":  # what an algorithm should never answer, and must not break ranking
        scores[rng.random(n) < 0.3] = np.nan
        scores[rng.random(n) < 0.01] = np.inf
    elif shape == "skewed":  # a few high scores, the rest near zero (popularity-like)
        scores = (rng.pareto(1.0, n) * 1e-3).astype(np.float32)
    keep = rng.random(n) < 0.8 if masked else None
    assert np.array_equal(top_positions(scores, keep, limit), by_full_sort(scores, keep, limit))
