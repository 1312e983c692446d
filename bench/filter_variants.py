"""Validation-only comparison of graph-filter variants (never reads a test file).

The collaborative filter's item-item part is ``r D_i^-a Rᵀ D_u^-2b R``, times
``deg_i^-c`` for ranking (GF-CF: a = b = 0.5, and the shipped popularity exponent 0.15
makes c = 0.35), plus 0.1 × the ideal low-pass filter on the top 640 singular vectors.
This script scores held-out items of a random holdout of the *training* events for a grid
of (b, a, c), over several seeds, and prints mean Recall@20 / NDCG@20 against GF-CF's
normalisation:

    .venv/bin/python bench/filter_variants.py gowalla      # ../shared/data/gowalla/train.txt
    .venv/bin/python bench/filter_variants.py movielens    # ../shared/data/movielens-small
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.tuning import holdout_split, ranking_metrics  # noqa: E402
from plugins.collaborative import _inv_sqrt, top_right_singular_vectors  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def gowalla() -> sp.csr_matrix:
    rows, cols = [], []
    for line in (DATA / "gowalla" / "train.txt").read_text().splitlines():
        user, *items = (int(x) for x in line.split())
        rows += [user] * len(items)
        cols += items
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)))


def movielens() -> sp.csr_matrix:
    users: dict[str, int] = {}
    items: dict[str, int] = {}
    rows, cols = [], []
    with (DATA / "movielens-small" / "ratings.csv").open() as f:
        for rec in csv.DictReader(f):
            rows.append(users.setdefault(rec["userId"], len(users)))
            cols.append(items.setdefault(rec["movieId"], len(items)))
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", choices=["gowalla", "movielens"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--users", type=int, default=3000)
    args = parser.parse_args()
    pref = gowalla() if args.dataset == "gowalla" else movielens()
    grid = list(itertools.product((0.3, 0.5, 0.7), (0.5, 0.7), (0.25, 0.35, 0.5)))
    found: dict[tuple[float, float, float], list[tuple[float, float]]] = {}
    for seed in range(args.seeds):
        split = holdout_split(pref, seed=seed, max_users=args.users, max_cells=10**9)
        assert split is not None
        train = split.train
        du = np.asarray(train.sum(1)).ravel()
        di = np.maximum(np.asarray(train.sum(0)).ravel(), 1e-9)
        norm = (sp.diags(_inv_sqrt(du)) @ train @ sp.diags(_inv_sqrt(di))).tocsr()
        vt = top_right_singular_vectors(norm.astype(np.float32), 640, iterations=5, seed=0)
        seen = train[split.users]
        spectral = np.asarray(seen.multiply(_inv_sqrt(di)[None, :]).tocsr() @ vt.T)
        low = 0.1 * (spectral @ vt) * np.sqrt(di)[None, :]  # GF-CF's ideal low-pass part
        for b, a, c in grid:
            weighted = sp.csr_matrix(seen.multiply(np.power(di, -a)[None, :]))
            by_user = sp.diags(np.power(np.maximum(du, 1e-9), -2 * b)) @ train
            linear = ((weighted @ train.T) @ by_user).toarray()
            scores = (linear + low) * np.power(di, -c)[None, :]
            recall, ndcg = ranking_metrics(scores.astype(np.float32), seen, split.held)
            found.setdefault((b, a, c), []).append((float(recall.mean()), float(ndcg.mean())))
    base = np.mean(found[(0.5, 0.5, 0.35)], axis=0)
    print(f"{args.dataset}: {args.seeds} holdouts of the training events, up to {args.users} users")
    print("| b (users) | a (history) | c (ranking) | Recall@20 | NDCG@20 | Δ Recall | Δ NDCG |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key, values in sorted(found.items(), key=lambda kv: -np.mean(kv[1], axis=0)[0]):
        r, n = np.mean(values, axis=0)
        print(f"| {key[0]} | {key[1]} | {key[2]} | {r:.4f} | {n:.4f} | {r - base[0]:+.4f} | "
              f"{n - base[1]:+.4f} |")


if __name__ == "__main__":
    main()
