"""The ``hybrid`` blend is not an algorithm but a named preset of weights over the others.

Cold-start only answers for users with few events and collaborative only for users with some,
so one preset serves both new and known users.
"""

from __future__ import annotations

from engines import hookimpl

# Chosen by `recograph tune --dataset movielens --blend collaborative,item_knn,content,
# trending,cold_start --trials 100 -k 10` on a temporal validation split carved from the
# training part only (docs/benchmarks.md), then rounded.
HYBRID = {
    "collaborative": 1.0,
    "item_knn": 1.0,
    "content": 0.35,
    "trending": 0.01,
    "cold_start": 2.0,
}


@hookimpl
def register_presets() -> dict[str, dict[str, float]]:
    return {"hybrid": dict(HYBRID)}
