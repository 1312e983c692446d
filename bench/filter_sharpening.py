"""Validation-only: the graph filter's item-item part as a polynomial of P = R̃ᵀR̃.

GF-CF's item-item part is linear, ``r P``; BSPM's sharpening subtracts a multiple of
``r P²``, which removes P's top eigenvector (the degrees: popularity). This script scores
held-out items of random holdouts of the *training* events (never a test file) for
``r (P + c2 P² + c3 P³)`` plus β × the ideal low-pass filter on the top 640 singular
vectors, all times degree^0.15 (the shipped popularity exponent), and prints Recall@20 /
NDCG@20 with the paired change against GF-CF's linear part (c2 = c3 = 0, β = 0.1):

    .venv/bin/python bench/filter_sharpening.py gowalla       # ../shared/data/gowalla/train.txt
    .venv/bin/python bench/filter_sharpening.py movielens     # ../shared/data/movielens-small
    .venv/bin/python bench/filter_sharpening.py gowalla --all-users

By default 20% of the items of 3,000 users are held out (as the trainer's automatic
selection does); ``--all-users`` holds out 20% of every user's items, as the LightGCN
test split does, and scores 3,000 of them.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from filter_variants import gowalla, movielens  # noqa: E402

from engines.tuning import holdout_split, ranking_metrics  # noqa: E402
from plugins.collaborative import _inv_sqrt, top_right_singular_vectors  # noqa: E402

SQUARES = (0.0, -0.25, -0.5, -0.75, -1.0)
CUBES = (0.0, 0.25, 0.5)
IDEAL = (0.0, 0.1, 0.2, 0.4)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", choices=["gowalla", "movielens"])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--all-users", action="store_true")
    args = parser.parse_args()
    pref = gowalla() if args.dataset == "gowalla" else movielens()
    found: dict[tuple[float, float, float], list[tuple[np.ndarray, np.ndarray]]] = {}
    for seed in range(args.seeds):
        if args.all_users:
            split = holdout_split(pref, seed=seed, max_users=10**9, max_cells=10**15)
        else:
            split = holdout_split(pref, seed=seed, max_users=args.users, max_cells=10**9)
        assert split is not None
        rows = np.arange(len(split.users))
        if len(rows) > args.users:
            rows = np.sort(np.random.default_rng(100 + seed).choice(rows, args.users, False))
        train = split.train.astype(np.float32).tocsr()
        held = split.held.tocsr()[rows]
        du = np.asarray(train.sum(1)).ravel()
        di = np.maximum(np.asarray(train.sum(0)).ravel(), 1e-9)
        norm = (sp.diags(_inv_sqrt(du)) @ train @ sp.diags(_inv_sqrt(di))).tocsr()
        norm = norm.astype(np.float32)
        vt = top_right_singular_vectors(norm, 640, iterations=5, seed=0)
        seen = train[split.users[rows]]

        def times_p(x: np.ndarray, norm: sp.csr_matrix = norm) -> np.ndarray:
            return np.asarray(norm.T @ (norm @ x.T)).T.astype(np.float32)

        first = times_p(seen.toarray())
        second = times_p(first)
        third = times_p(second)
        scaled = sp.csr_matrix(seen.multiply(_inv_sqrt(di)[None, :]))
        low = ((scaled @ vt.T) @ vt * np.sqrt(di)[None, :]).astype(np.float32)
        tilt = np.power(di, 0.15).astype(np.float32)[None, :]
        for c2, c3, beta in itertools.product(SQUARES, CUBES, IDEAL):
            scores = (first + c2 * second + c3 * third + beta * low) * tilt
            recall, ndcg = ranking_metrics(scores, seen, held, overwrite=True)
            found.setdefault((c2, c3, beta), []).append((recall, ndcg))

    def joined(key: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray]:
        values = found[key]
        return np.concatenate([v[0] for v in values]), np.concatenate([v[1] for v in values])

    base_r, base_n = joined((0.0, 0.0, 0.1))
    protocol = "20% of every user's items" if args.all_users else "20% of the items of"
    print(f"{args.dataset}: {args.seeds} holdouts of the training events ({protocol} "
          f"{args.users} scored users)")
    print("| c2 (P²) | c3 (P³) | β (ideal) | Recall@20 | NDCG@20 | Δ Recall ± SE | Δ NDCG |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    ranked = sorted(found, key=lambda key: -joined(key)[0].mean())
    for key in ranked:
        r, n = joined(key)
        d = r - base_r
        print(f"| {key[0]} | {key[1]} | {key[2]} | {r.mean():.4f} | {n.mean():.4f} | "
              f"{d.mean():+.4f} ± {d.std() / np.sqrt(len(d)):.4f} | {(n - base_n).mean():+.4f} |")


if __name__ == "__main__":
    main()
