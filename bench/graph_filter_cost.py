"""CPU milliseconds per user of the collaborative graph filter's scoring, with and without
sharpening, one user per call and batches of 16 (the serving batcher's sizes), on the whole
of MovieLens-small and Gowalla's training file:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/graph_filter_cost.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from filter_variants import gowalla, movielens  # noqa: E402

from engines import compress  # noqa: E402
from plugins.collaborative import Collaborative  # noqa: E402

CALLS = 200


def main() -> None:
    for name, load in (("movielens", movielens), ("gowalla", gowalla)):
        pref = compress(load().tocsr())
        model = Collaborative(Collaborative.Config(autotune=False))
        model.item_ids = np.arange(pref.shape[1])
        model._fit_graph_filter(pref)
        rng = np.random.default_rng(0)
        for batch in (1, 16):
            for sharpen in (0.0, 0.75):
                model.config = model.config.model_copy(update={"sharpen": sharpen})
                users = rng.choice(pref.shape[0], CALLS * batch)
                started = time.process_time()
                for k in range(CALLS):
                    model.graph_scores(pref[users[k * batch : (k + 1) * batch]])
                ms = (time.process_time() - started) / (CALLS * batch) * 1000
                print(f"{name}: batch {batch:2d}, sharpen {sharpen}: {ms:.2f} ms CPU per user")


if __name__ == "__main__":
    main()
