"""Validation-only experiment: would EASE (Steck, "Embarrassingly Shallow Autoencoders",
WWW 2019) add to the shipped collaborative filter? Never reads a test part.

Each MovieLens random split's *training* part (the split ``recograph evaluate --split
random --seed S`` makes) is split again (20% of each user's events held out); EASE with a
few ridge strengths, the collaborative filter (automatic selection on), and blends of the
two are fitted on the rest and scored on the held-out events:

    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/ease_validation.py --seeds 0,1,2

EASE here is the plain closed form: B = I − P·diag(1/diag P), P = (XᵀX + λI)⁻¹, over the
same log-compressed preference matrix the other algorithms use; a dense items × items
inverse, so only for catalogues of up to ~10k items.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines import (  # noqa: E402
    Algorithm,
    AlgorithmConfig,
    Query,
    Scores,
    TrainingData,
    history_matrix,
    preference_matrix,
    training_field,
)
from engines.datasets import movielens  # noqa: E402
from engines.evaluation.evaluator import evaluate, random_holdout  # noqa: E402
from plugins.collaborative import Collaborative  # noqa: E402


class EaseConfig(AlgorithmConfig):
    l2: float = training_field(500.0, gt=0, description="Ridge strength λ.")
    keep: int = training_field(0, ge=0, description="Weights kept per item (0: all).")


class Ease(Algorithm):
    name = "ease"
    description = "EASE: closed-form item-item regression (experiment only)."
    Config = EaseConfig
    config: EaseConfig

    def fit(self, data: TrainingData) -> None:
        x = preference_matrix(data, None)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.config.l2
        p = np.linalg.inv(gram)
        b = -p / np.diag(p)[None, :]
        np.fill_diagonal(b, 0.0)
        if 0 < self.config.keep < len(b):  # the largest weights of each row, by size
            cut = np.argpartition(-np.abs(b), self.config.keep, axis=1)[:, self.config.keep :]
            np.put_along_axis(b, cut, 0.0, axis=1)
        self.b = b.astype(np.float32)
        self.item_ids = data.item_ids.copy()
        self.fitted = True

    def score(self, query: Query) -> Scores | None:
        return self.score_batch([query])[0] if len(query) else None

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        return np.asarray(history_matrix(queries, self.item_ids, None) @ self.b, np.float32)

    def state(self) -> dict[str, np.ndarray]:
        return {"b": self.b, "item_ids": self.item_ids}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.b, self.item_ids = arrays["b"], arrays["item_ids"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", type=Path, default=ROOT.parent / "shared/data/movielens-small")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--l2", default="100,500,1000")
    parser.add_argument("--keep", default="0", help="weights kept per item, e.g. 0,200")
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
                name = f"ease λ={l2:g}" + (f" top {keep}" if keep else "")
                algorithms[name] = Ease(EaseConfig(l2=l2, keep=keep))
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
