"""Validation-only: would EASE fitted on the head of a large catalogue (its most used
items) add to the collaborative filter? Gowalla's 40,981 places are over EASE's 10,000-item
limit, so today it has no opinion there. Never reads ``test.txt``.

20% of every user's items of Gowalla's ``train.txt`` are held out (as the LightGCN test
split holds out), the collaborative filter (shipped defaults, no search) and EASE on the
``--head`` most visited places are fitted on the rest, and 3,000 users are scored:
Recall@20 / NDCG@20 of ``collaborative / its max + w × ease / its max`` per user, against
``w = 0`` (the filter alone):

    OPENBLAS_NUM_THREADS=2 .venv/bin/python bench/ease_head_gowalla.py --head 10000 --l2 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.datasets import gowalla  # noqa: E402
from engines.evaluation.evaluator import training_data  # noqa: E402
from engines.toolkit import preference_matrix  # noqa: E402
from engines.tuning import holdout_split, ranking_metrics  # noqa: E402
from plugins.collaborative import Collaborative  # noqa: E402
from plugins.ease import ease_weights  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--head", type=int, default=10_000)
    parser.add_argument("--l2", default="60")
    parser.add_argument("--weights", default="0.1,0.25,0.5,1,2")
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, _ = gowalla(DATA / "gowalla")  # the test part is returned, never used
    pref = preference_matrix(training_data(train), None)
    split = holdout_split(pref, seed=args.seed, max_users=10**9, max_cells=10**15)
    assert split is not None
    rng = np.random.default_rng(100 + args.seed)
    rows = np.sort(rng.choice(len(split.users), args.users, replace=False))
    seen = split.train[split.users[rows]]
    held = split.held[rows]
    started = time.perf_counter()
    model = Collaborative({"autotune": False})
    model.item_ids = np.arange(pref.shape[1])
    model._fit_graph_filter(split.train)
    collaborative = model.graph_scores(seen)
    print(f"collaborative fitted and scored in {time.perf_counter() - started:.0f} s", flush=True)
    base_r, base_n = ranking_metrics(collaborative, seen, held)
    print(f"collaborative alone: Recall@20 {base_r.mean():.4f} NDCG@20 {base_n.mean():.4f}")
    head = np.sort(np.argsort(-np.diff(split.train.tocsc().indptr))[: args.head])
    share = split.train[:, head].nnz / split.train.nnz
    print(f"head: {len(head)} places, {share:.1%} of the training events")
    top = collaborative.max(axis=1, keepdims=True)
    for l2 in (float(v) for v in args.l2.split(",")):
        started = time.perf_counter()
        weights = ease_weights(split.train[:, head].tocsr(), l2, 0.0, np.float32)
        ease = np.zeros_like(collaborative)
        ease[:, head] = np.asarray(seen[:, head] @ weights)
        del weights
        print(f"ease λ {l2:g} fitted and scored in {time.perf_counter() - started:.0f} s")
        alone_r, alone_n = ranking_metrics(ease, seen, held)
        print(f"  ease alone: Recall@20 {alone_r.mean():.4f} NDCG@20 {alone_n.mean():.4f}")
        scale = np.maximum(ease.max(axis=1, keepdims=True), 1e-9)
        print("  | w | Recall@20 | NDCG@20 | Δ Recall ± SE | Δ NDCG ± SE |")
        print("  | --- | --- | --- | --- | --- |")
        for w in (float(v) for v in args.weights.split(",")):
            blended = collaborative / top + w * ease / scale
            r, n = ranking_metrics(blended, seen, held, overwrite=True)
            dr, dn = r - base_r, n - base_n
            se = np.sqrt(len(dr))
            print(
                f"  | {w:g} | {r.mean():.4f} | {n.mean():.4f} | {dr.mean():+.4f} ± "
                f"{dr.std(ddof=1) / se:.4f} | {dn.mean():+.4f} ± {dn.std(ddof=1) / se:.4f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
