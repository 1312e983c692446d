"""Calibrated re-ranking on MovieLens-small (temporal split, the default hybrid): NDCG@10,
Recall@10 and miscalibration (Steck's KL of the list's genres against the history's) for
several strengths, each with its standard error over test users, in one run.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/calibration.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engines.datasets import movielens  # noqa: E402
from engines.evaluation.evaluator import (  # noqa: E402
    Ranker,
    relevant_sets,
    temporal,
    training_data,
)
from engines.evaluation.metrics import ndcg_at_k, recall_at_k  # noqa: E402
from engines.serving.blending import blend  # noqa: E402
from engines.serving.calibration import calibrate, category_shares, miscalibration  # noqa: E402
from gql.server.runtime import load_registry  # noqa: E402
from gql.server.settings import Settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "movielens-small"
STRENGTHS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9)
K = 10
POOL = 100


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--validation",
        action="store_true",
        help="the default is chosen here: the training part's own newest events as the test",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    split = temporal(movielens(DATA))
    if args.validation:
        split = temporal(split.train)
    data = training_data(split.train)
    genres = {c.item_id: list(c.categories) for c in data.content}
    registry = load_registry(Settings())
    weights = registry.presets["hybrid"]
    models = {}
    for name in weights:
        model = registry.algorithm(name)(registry.config(name, None))
        model.fit(data)
        models[name] = model
    relevant = relevant_sets(split.test)
    users = sorted(relevant)
    ranker = Ranker(data)
    lists = {n: ranker.proposals(m, users, 200) for n, m in models.items()}
    rows: dict[float, dict[str, list[float]]] = {
        s: {"ndcg": [], "recall": [], "kl": []} for s in STRENGTHS
    }
    for u, user in enumerate(users):
        query = ranker.query(user)
        liked = query.weights > 0
        target = category_shares(query.items[liked].tolist(), query.weights[liked].tolist(), genres)
        pool = blend({n: (weights[n], lists[n][u]) for n in models}, POOL)
        ids = [b.item_id for b in pool]
        relevance = np.array([b.score for b in pool])
        for strength in STRENGTHS:
            picked = [ids[i] for i in calibrate(ids, relevance, genres, target, strength, K)]
            rows[strength]["ndcg"].append(ndcg_at_k(picked, relevant[user], K))
            rows[strength]["recall"].append(recall_at_k(picked, relevant[user], K))
            if target:
                rows[strength]["kl"].append(miscalibration(target, picked, genres))
    out = {}
    part = "validation (inside the training part)" if args.validation else "test"
    print(
        f"MovieLens-small, temporal split, {part}, hybrid, {len(users)} users, k={K}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    print("| calibration λ | NDCG@10 | Recall@10 | miscalibration (KL) |")
    print("| --- | --- | --- | --- |")
    base = np.asarray(rows[0.0]["ndcg"])
    for strength, r in rows.items():
        stats = {}
        for key, values in r.items():
            v = np.asarray(values)
            stats[key] = (float(v.mean()), float(v.std(ddof=1) / np.sqrt(len(v))))
        diff = np.asarray(r["ndcg"]) - base
        stats["ndcg_change"] = (float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff))))
        out[str(strength)] = stats
        print(
            f"| {strength} | {stats['ndcg'][0]:.4f} ± {stats['ndcg'][1]:.4f} "
            f"(change {stats['ndcg_change'][0]:+.4f} ± {stats['ndcg_change'][1]:.4f}) | "
            f"{stats['recall'][0]:.4f} ± {stats['recall'][1]:.4f} | "
            f"{stats['kl'][0]:.3f} ± {stats['kl'][1]:.3f} |"
        )
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
