"""Search relevance on MovieLens with a labelled query set, through the GraphQL API:

- **title**: a film's title as a person types it (lower case, no year) -> that film;
- **typo**: the same with two adjacent letters swapped in its longest word -> that film;
- **tag**: each tag on at least 3 films -> every film carrying it.

MRR@10 and NDCG@10 (binary relevance) for each retriever alone, the hybrid, and the search
before it (vectors only, with the feature-hashing embedder and with TF-IDF), in one run.

    .venv/bin/python bench/prepare.py movielens
    RECOGRAPH_EMBEDDER=hashing .venv/bin/python bench/prepare.py movielens \\
        --data-dir .recograph/bench/movielens-hashing
    .venv/bin/python bench/search_quality.py [--queries 1000] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server import ROOT, serving

from engines.datasets import movielens_movies

DATA = ROOT.parent / "shared" / "data" / "movielens-small"
QUERY = """query($t: String!, $r: [SearchRetriever!]) {
  search(text: $t, first: 10, retrievers: $r) { item { itemId } } }"""
K = 10


def swap_typo(title: str, rng: random.Random) -> str | None:
    words = title.lower().split()
    longest = max(range(len(words)), key=lambda n: len(words[n]))
    word = words[longest]
    if len(word) < 5:
        return None
    at = rng.randrange(1, len(word) - 2)
    words[longest] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return " ".join(words)


def in_split(key: str, split: str) -> bool:
    """Design choices are made on ``dev`` queries; ``test`` ones are only reported."""
    digest = hashlib.sha256(key.encode()).digest()[0]
    return (digest % 2 == 0) == (split == "dev")


def query_set(n: int, split: str, seed: int = 0) -> dict[str, list[tuple[str, set[str]]]]:
    movies = movielens_movies(DATA)
    rng = random.Random(seed)
    by_title = defaultdict(set)
    for m in movies:
        by_title[m.title.strip().lower()].add(m.id)
    titled = [m for m in movies if m.title.strip() and in_split(m.id, split)]
    picked = rng.sample(titled, min(n, len(titled)))
    titles = [(m.title.strip().lower(), by_title[m.title.strip().lower()]) for m in picked]
    typos = []
    for m in picked:
        typo = swap_typo(m.title.strip(), rng)
        if typo is not None:
            typos.append((typo, by_title[m.title.strip().lower()]))
    carrying = defaultdict(set)
    for m in movies:
        for t in m.tags:
            carrying[t].add(m.id)
    tags = sorted((t, ids) for t, ids in carrying.items() if len(ids) >= 3 and in_split(t, split))
    tags = rng.sample(tags, min(n, len(tags)))
    return {"title": titles, "typo": typos, "tag": tags}


def ask(port: int, text: str, retrievers: list[str] | None) -> list[str]:
    body = json.dumps({"query": QUERY, "variables": {"t": text, "r": retrievers}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        out = json.load(resp)
    if "errors" in out:
        raise SystemExit(f"{text!r}: {out['errors']}")
    return [h["item"]["itemId"] for h in out["data"]["search"]]


def metrics(ranked: list[str], relevant: set[str]) -> tuple[float, float, float]:
    """(reciprocal rank, NDCG, hit at 1) at K."""
    rr = next((1.0 / (n + 1) for n, i in enumerate(ranked[:K]) if i in relevant), 0.0)
    dcg = sum(1.0 / math.log2(n + 2) for n, i in enumerate(ranked[:K]) if i in relevant)
    ideal = sum(1.0 / math.log2(n + 2) for n in range(min(K, len(relevant))))
    return rr, dcg / ideal, float(bool(ranked) and ranked[0] in relevant)


def evaluate(port: int, queries: dict[str, list[tuple[str, set[str]]]], retrievers: Any) -> dict:
    out: dict[str, Any] = {}
    with ThreadPoolExecutor(4) as pool:
        for kind, qs in queries.items():
            started = time.perf_counter()
            ranked = list(pool.map(lambda q: ask(port, q[0], retrievers), qs))
            scores = [metrics(r, rel) for r, (_, rel) in zip(ranked, qs, strict=True)]
            n = len(scores)
            out[kind] = {
                "queries": n,
                "mrr@10": round(sum(s[0] for s in scores) / n, 4),
                "ndcg@10": round(sum(s[1] for s in scores) / n, 4),
                "first": round(sum(s[2] for s in scores) / n, 4),
                "seconds": round(time.perf_counter() - started, 1),
            }
    return out


CONFIGS = [
    # (label, data directory, retrievers)
    ("vector only, hashing embedder (search before)", "movielens-hashing", ["VECTOR"]),
    ("vector only, tfidf embedder", "movielens", ["VECTOR"]),
    ("fulltext only", "movielens", ["FULLTEXT"]),
    ("trigram only", "movielens", ["TRIGRAM"]),
    ("hybrid, hashing embedder", "movielens-hashing", None),
    ("hybrid, tfidf embedder (default)", "movielens", None),
]
#: how each directory was trained (prepare.py) is how it must be served
ENV = {"movielens-hashing": {"RECOGRAPH_EMBEDDER": "hashing"}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--queries", type=int, default=1000, help="per kind (tags: at most)")
    parser.add_argument("--split", choices=["dev", "test"], default="test")
    parser.add_argument("--only", help="comma-separated data directories to serve")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    queries = query_set(args.queries, args.split)
    sizes = {k: len(v) for k, v in queries.items()}
    print(f"{args.split} queries {sizes};", time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    results: dict[str, Any] = {}
    configs = [c for c in CONFIGS if not args.only or c[1] in args.only.split(",")]
    for directory in dict.fromkeys(d for _, d, _ in configs):
        path = ROOT / ".recograph" / "bench" / directory
        if not path.exists():
            raise SystemExit(f"{path} is missing: see this script's docstring")
        with serving(path, workers=1, env=ENV.get(directory)) as (_, port):
            for label, d, retrievers in configs:
                if d == directory:
                    results[label] = evaluate(port, queries, retrievers)
    kinds = list(queries)
    head = "| search | " + " | ".join(f"{k} MRR@10 | {k} NDCG@10" for k in kinds)
    print(head + " | exact title first |")
    print("|---" * (2 * len(kinds) + 2) + "|")
    for label, _, _ in configs:
        r = results[label]
        cells = " | ".join(f"{r[k]['mrr@10']:.3f} | {r[k]['ndcg@10']:.3f}" for k in kinds)
        print(f"| {label} | {cells} | {r['title']['first']:.1%} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    counts = Counter(len(rel) for _, rel in queries["tag"])
    print("films per tag query: median", sorted(counts.elements())[len(queries["tag"]) // 2])


if __name__ == "__main__":
    main()
