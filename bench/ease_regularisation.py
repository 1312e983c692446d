"""Validation-only: how EASE's regularisation should be set per tenant. Never reads a test
file.

EASE (``plugins/ease.py``) solves ``(XᵀX + Λ)⁻¹`` with Λ = λI, λ fixed at 500 (chosen on
MovieLens-small). This script scores, on a holdout of the *training* events (20% of the
items of up to 2,000 users, as the trainer's automatic selection holds out), a grid of

- λ, the ridge strength added to every item, and
- EDLAE's dropout term (Steck, "Autoencoders that don't overfit towards the identity",
  NeurIPS 2020): each item's own ridge also grows by p/(1−p) × its Gram diagonal,

on two data sets of very different density:

- ``movielens``: the training part of ``recograph evaluate --split random --seed S``
  (610 users, ~9.7k items);
- ``gowalla``: Gowalla's ``train.txt`` restricted to its 10,000 most visited places
  (~29k users: the Gram diagonal is about 20 times MovieLens').

    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/ease_regularisation.py movielens
    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/ease_regularisation.py gowalla

Prints Recall@20 / NDCG@20 per setting and the paired change ± SE against λ = 500, p = 0.
All weights are kept (no pruning): the comparison is of the regularisation alone.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.datasets import gowalla, movielens  # noqa: E402
from engines.evaluation.evaluator import random_holdout, training_data  # noqa: E402
from engines.toolkit import preference_matrix  # noqa: E402
from engines.tuning import holdout_split, ranking_metrics  # noqa: E402
from plugins.ease import ease_weights  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def preferences(name: str, seed: int) -> sp.csr_matrix:
    if name == "movielens":
        outer = random_holdout(movielens(DATA / "movielens-small"), 0.2, seed)
        return preference_matrix(training_data(outer.train), None)
    train, _ = gowalla(DATA / "gowalla")  # the test part is returned, never used
    pref = preference_matrix(training_data(train), None).tocsc()
    top = np.sort(np.argsort(-np.diff(pref.indptr))[:10_000])
    pref = pref[:, top].tocsr()
    return pref[np.diff(pref.indptr) > 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", choices=["movielens", "gowalla"])
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--l2", default="60,125,250,500,1000,2000")
    parser.add_argument("--dropout", default="0,0.1,0.25,0.5")
    args = parser.parse_args()
    grid = [
        (float(lam), float(p)) for lam in args.l2.split(",") for p in args.dropout.split(",")
    ]
    for seed in (int(s) for s in args.seeds.split(",")):
        pref = preferences(args.dataset, seed)
        split = holdout_split(pref, seed=seed, max_cells=10**10)
        assert split is not None
        seen = split.train[split.users]
        diagonal = np.asarray(split.train.multiply(split.train).sum(axis=0)).ravel()
        print(
            f"\n{args.dataset} seed {seed}: {pref.shape[0]} users × {pref.shape[1]} items, "
            f"{pref.nnz} events; {len(split.users)} validation users; Gram diagonal mean "
            f"{diagonal.mean():.1f}, median {np.median(diagonal):.1f}"
        )
        found: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}
        for lam, p in grid:
            started = time.perf_counter()
            weights = ease_weights(split.train, lam, p, np.float32)
            scores = np.asarray(seen @ weights)
            found[lam, p] = ranking_metrics(scores, seen, split.held, overwrite=True)
            print(f"  λ {lam:g} p {p:g}: {time.perf_counter() - started:.1f} s", flush=True)
        base = found.get((500.0, 0.0), next(iter(found.values())))
        print("| λ | dropout p | Recall@20 | NDCG@20 | Δ Recall ± SE | Δ NDCG ± SE |")
        print("| --- | --- | --- | --- | --- | --- |")
        for (lam, p), (recall, ndcg) in sorted(found.items(), key=lambda kv: -kv[1][0].mean()):
            dr, dn = recall - base[0], ndcg - base[1]
            se = np.sqrt(len(dr))
            print(
                f"| {lam:g} | {p:g} | {recall.mean():.4f} | {ndcg.mean():.4f} | "
                f"{dr.mean():+.4f} ± {dr.std(ddof=1) / se:.4f} | "
                f"{dn.mean():+.4f} ± {dn.std(ddof=1) / se:.4f} |"
            )


if __name__ == "__main__":
    main()
