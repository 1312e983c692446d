"""How cost grows with data: a synthetic generator, then training time, peak memory and
scoring rate of every built-in algorithm at each size.

The generator draws a tenant that looks like real interaction data: item popularity follows
a power law within each of ``--categories`` categories, users have latent tastes (a few
favourite categories, Dirichlet-weighted) and a power-law activity, events carry
timestamps over half a year, and items have titles, categories and tags for content models.
Users and items grow with the number of events (one of each per 50 events by default).

Each algorithm is trained in a child process of its own, so its peak memory (the child's
maximum resident set size) is its alone; the same child then times ``--requests`` single
requests the way the server ranks them (scores, candidate mask, top 200, explanations of
the top 20), one after another on one core.

    .venv/bin/python bench/scale.py --events 1000000 3000000 10000000
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import time
from datetime import UTC, datetime

import numpy as np

ALGORITHMS = ("collaborative", "item_knn", "content", "trending", "cold_start")


def generate(
    n_events: int, per_entity: int = 50, categories: int = 50, seed: int = 42
) -> dict[str, object]:
    """Synthetic events and catalogue (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    n_users = max(100, n_events // per_entity)
    n_items = max(100, n_events // per_entity)
    item_category = rng.integers(0, categories, n_items)
    # power-law popularity inside each category
    popularity = rng.pareto(1.1, n_items) + 1.0
    by_category = [np.flatnonzero(item_category == c) for c in range(categories)]
    cumulative = []
    for members in by_category:
        p = popularity[members]
        cumulative.append(np.cumsum(p / p.sum()))
    # latent tastes: each user mostly draws from three favourite categories
    favourites = rng.integers(0, categories, (n_users, 3))
    shares = rng.dirichlet([2.0, 1.0, 0.5], n_users)
    activity = rng.pareto(1.5, n_users) + 1.0
    users = rng.choice(n_users, n_events, p=activity / activity.sum())
    which = (rng.random(n_events)[:, None] > np.cumsum(shares[users], axis=1)).sum(axis=1)
    explore = rng.random(n_events) < 0.1  # one event in ten outside the user's tastes
    chosen_category = np.where(
        explore,
        rng.integers(0, categories, n_events),
        favourites[users, np.minimum(which, 2)],
    )
    items = np.empty(n_events, np.int64)
    draws = rng.random(n_events)
    for c in range(categories):
        mask = chosen_category == c
        if mask.any() and len(by_category[c]):
            picked = np.searchsorted(cumulative[c], draws[mask])
            items[mask] = by_category[c][np.minimum(picked, len(by_category[c]) - 1)]
        elif mask.any():
            items[mask] = rng.integers(0, n_items, mask.sum())
    t0 = 1_700_000_000.0
    times = np.sort(rng.uniform(t0, t0 + 180 * 86400, n_events))
    weights = rng.choice(np.array([1.0, 2.0, 5.0], np.float32), n_events, p=[0.8, 0.15, 0.05])
    return {
        "users": users.astype(np.int64) + 1,
        "items": items + 1,
        "weights": weights,
        "times": times,
        "item_category": item_category,
        "n_items": n_items,
    }


def training_data(generated: dict[str, object]):  # type: ignore[no-untyped-def]
    from engines.data import ItemContent, TrainingData
    from engines.host.registry import Registry

    words = "red blue green dark light classic modern small large fast slow quiet".split()
    n_items = int(generated["n_items"])  # type: ignore[call-overload]
    category = generated["item_category"]
    content = [
        ItemContent(
            i + 1,
            "item",
            f"{words[i % 12]} {words[(i // 12) % 12]} thing {i}",
            None,
            (f"c{category[i]}",),  # type: ignore[index]
            (f"t{category[i]}", words[(i * 7) % 12]),  # type: ignore[index]
        )
        for i in range(n_items)
    ]
    return TrainingData.from_events(
        generated["users"],  # type: ignore[arg-type]
        generated["items"],  # type: ignore[arg-type]
        generated["weights"],  # type: ignore[arg-type]
        generated["times"],  # type: ignore[arg-type]
        content,
        embedder=Registry.load().embedder("tfidf"),
    )


def measure(name: str, n_events: int, requests: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    from threadpoolctl import threadpool_limits

    from engines.algorithm import Query
    from engines.host.registry import Registry
    from engines.serving.blending import pool
    from engines.serving.ranking import allowed, explain_pool, rank_scores

    threadpool_limits(1)
    generated = generate(n_events)
    data = training_data(generated)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model = Registry.load().create(name)
    started = time.perf_counter()
    model.fit(data)
    fit_seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rng = np.random.default_rng(1)
    order = np.argsort(data.event_users, kind="stable")
    bounds = np.searchsorted(data.event_users[order], np.arange(data.n_users + 1))
    keep = allowed(model.item_ids, data.item_ids, None)
    started = time.perf_counter()
    for u in rng.integers(0, data.n_users, requests):
        rows = order[bounds[u] : bounds[u + 1]][-500:][::-1]
        query = Query(
            int(data.user_ids[u]),
            data.item_ids[data.event_items[rows]],
            data.event_weights[rows],
            data.event_times[rows],
            data.now,
        )
        ranked = rank_scores(model, query, model.score(query), 200, query.items, keep=keep,
                             explain=False)  # fmt: skip
        explain_pool({name: model}, query, pool({name: (1.0, ranked)}, 20))
    per_request = (time.perf_counter() - started) / requests
    out.put(
        {
            "algorithm": name,
            "fit_seconds": fit_seconds,
            "peak_rss_mib": peak / 1024,
            "data_rss_mib": base_rss / 1024,
            "ms_per_request": per_request * 1000,
            "users": data.n_users,
            "items": data.n_items,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--algorithms", nargs="+", default=list(ALGORITHMS))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    ctx = multiprocessing.get_context("spawn")
    results = []
    for n in args.events:
        for name in args.algorithms:
            queue = ctx.Queue()
            child = ctx.Process(target=measure, args=(name, n, args.requests, queue))
            child.start()
            child.join()
            if child.exitcode != 0:
                results.append({"algorithm": name, "events": n, "failed": child.exitcode})
                print(f"{n:,} events, {name}: failed ({child.exitcode})", flush=True)
                continue
            row = {"events": n, **queue.get()}
            results.append(row)
            print(json.dumps(row), flush=True)
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; one BLAS thread\n"
    )
    print("| events | users | items | algorithm | fit s | peak RSS MiB (data alone) | ms/request |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in results:
        if "failed" in r:
            print(f"| {r['events']:,} | | | {r['algorithm']} | failed ({r['failed']}) | | |")
            continue
        print(
            f"| {r['events']:,} | {r['users']:,} | {r['items']:,} | {r['algorithm']} | "
            f"{r['fit_seconds']:.1f} | {r['peak_rss_mib']:,.0f} ({r['data_rss_mib']:,.0f}) | "
            f"{r['ms_per_request']:.2f} |"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
