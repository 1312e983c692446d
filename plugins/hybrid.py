"""The ``hybrid`` blend is not an algorithm but a named preset of weights over the others.

Cold-start only answers for users with few events and collaborative only for users with some,
so one preset serves both new and known users.
"""

from __future__ import annotations

from engines import hookimpl

HYBRID = {
    "collaborative": 1.0,
    "item_knn": 0.6,
    "content": 0.2,
    "trending": 0.05,
    "cold_start": 0.5,
}


@hookimpl
def register_presets() -> dict[str, dict[str, float]]:
    return {"hybrid": dict(HYBRID)}
