"""Validation-only experiment: would EASE (Steck, "Embarrassingly Shallow Autoencoders",
WWW 2019) add to the shipped collaborative filter? Never reads a test part.

Each MovieLens random split's *training* part (the split ``recograph evaluate --split
random --seed S`` makes) is split again (20% of each user's events held out); EASE with a
few ridge strengths, the collaborative filter (automatic selection on), and blends of the
two are fitted on the rest and scored on the held-out events:

    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/ease_validation.py --seeds 0,1,2

EASE is the plugin (``plugins/ease.py``), with the ridge strengths and the weights kept
per item given (``--keep 5000`` keeps nearly all of MovieLens' ~9k).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.algorithm import Algorithm  # noqa: E402
from engines.datasets import movielens  # noqa: E402
from engines.evaluation.evaluator import evaluate, random_holdout  # noqa: E402
from plugins.collaborative import Collaborative  # noqa: E402
from plugins.ease import Ease  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", type=Path, default=ROOT.parent / "shared/data/movielens-small")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--l2", default="100,500,1000")
    parser.add_argument("--keep", default="200", help="weights kept per item, e.g. 200,5000")
    parser.add_argument("-k", type=int, default=10)
    args = parser.parse_args()
    events = movielens(args.path)
    strengths = [float(v) for v in args.l2.split(",")]
    for seed in (int(s) for s in args.seeds.split(",")):
        outer = random_holdout(events, 0.2, seed)  # its test part is never used
        validation = random_holdout(outer.train, 0.2, 1000 + seed)
        algorithms: dict[str, Algorithm] = {"collaborative": Collaborative()}
        blends = {}
        for l2 in strengths:
            for keep in (int(v) for v in args.keep.split(",")):
                name = f"ease λ={l2:g} top {keep}"
                algorithms[name] = Ease({"l2": l2, "keep": keep})
                for w in (1.0, 2.0):
                    blends[f"collaborative + {w:g} × {name}"] = {"collaborative": 1.0, name: w}
        started = time.perf_counter()
        results = evaluate(algorithms, validation, k=args.k, blends=blends)
        print(f"\nseed {seed} ({time.perf_counter() - started:.0f} s)")
        print(f"| model | NDCG@{args.k} | Recall@{args.k} | fit s |")
        print("| --- | --- | --- | --- |")
        for r in sorted(results, key=lambda r: -r.ndcg):
            print(f"| {r.name} | {r.ndcg:.4f} | {r.recall:.4f} | {r.fit_seconds:.1f} |")


if __name__ == "__main__":
    main()
