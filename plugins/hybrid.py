"""The ``hybrid`` blend is not an algorithm but a named preset of weights over the others.

Cold-start only answers for users with few events and collaborative only for users with some,
so one preset serves both new and known users.
"""

from __future__ import annotations

from engines import hookimpl

# Chosen on validation splits carved from MovieLens' training part only (never its test
# part): the weights of the first five by `recograph tune --dataset movielens --blend
# collaborative,item_knn,ease,content,trending --trials 100 -k 10`, rescaled so item_knn is
# 1 and rounded; the cold_start weight by the cold-user protocol (docs/benchmarks.md). Each
# tenant's training then learns its own weights (engines/training/blend_learning.py).
HYBRID = {
    "collaborative": 0.75,
    "item_knn": 1.0,
    "ease": 1.25,
    "content": 0.85,
    "trending": 0.15,
    "cold_start": 0.5,
}


@hookimpl
def register_presets() -> dict[str, dict[str, float]]:
    return {"hybrid": dict(HYBRID)}
