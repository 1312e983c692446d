"""Request latency of the API on MovieLens-small, measured end to end over HTTP.

Starts an embedded PostgreSQL in a scratch directory (or uses DATABASE_URL), imports
MovieLens-small, trains every model, then sends bounded loads of GraphQL requests to the
in-process server on 127.0.0.1 and prints p50/p95/p99 latency and throughput.

    .venv/bin/python bench/serve_latency.py --data ../shared/data/movielens-small
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

from aiohttp import ClientSession, web

from gql.server.app import create_app
from gql.server.database import database, store_for
from gql.server.settings import Settings
from storage.io import importer as importing

QUERIES = {
    "recommendations (hybrid, 10, explained)": """query($u: String!) {
        recommendations(userId: $u, first: 10) { score item { itemId title }
        reasons { algorithm contribution becauseItem { itemId } } } }""",
    "recommendations (collaborative, filtered)": """query($u: String!) {
        recommendations(userId: $u, first: 10, algorithms: [{name: "collaborative"}],
        filter: {categories: ["Comedy"]}) { item { itemId } } }""",
    "similarItems": """query($i: String!) { similarItems(itemId: $i, first: 10)
        { item { itemId title } } }""",
    "search (pgvector)": """query { search(text: "space adventure", first: 10)
        { score item { itemId } } }""",
    "item by id": """query($i: ID!) { item(id: $i) { itemId title categories } }""",
}


async def measure(
    session: ClientSession,
    url: str,
    query: str,
    variables: list[dict],
    requests: int,
    concurrency: int,
) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue = list(range(requests))

    async def worker() -> None:
        while queue:
            n = queue.pop()
            started = time.perf_counter()
            async with session.post(
                url, json={"query": query, "variables": variables[n % len(variables)]}
            ) as r:
                body = await r.json()
                assert "errors" not in body, body
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, requests / (time.perf_counter() - started)


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1]


async def run(args: argparse.Namespace, settings: Settings) -> None:
    async with store_for(settings) as store:
        if await store.items.count("default") == 0:
            await importing.import_movielens(store, Path(args.data), progress=False)
        app = create_app(settings, store=store)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/graphql"
        rng = random.Random(0)
        users = [{"u": str(rng.randint(1, 610))} for _ in range(200)]
        items = [
            {"i": str(rng.choice([1, 2, 32, 50, 260, 296, 318, 356, 593, 2571]))} for _ in range(50)
        ]
        async with ClientSession() as session:
            train = await session.post(
                url,
                json={
                    "query": "mutation { modelTrain(input: {}) { models { algorithm seconds } } }"
                },
            )
            print("trained:", (await train.json())["data"]["modelTrain"]["models"])
            print(
                f"\nmachine: {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} cores; {args.requests} requests per row\n"
            )
            print("| query | concurrency | p50 ms | p95 ms | p99 ms | req/s |")
            print("| --- | --- | --- | --- | --- | --- |")
            for name, query in QUERIES.items():
                variables = items if "$i" in query else users
                await measure(session, url, query, variables, 20, 1)  # warm up
                for conc in (1, args.concurrency):
                    lat, rps = await measure(session, url, query, variables, args.requests, conc)
                    print(
                        f"| {name} | {conc} | {pct(lat, 50):.1f} | {pct(lat, 95):.1f} | "
                        f"{pct(lat, 99):.1f} | {rps:.0f} |"
                    )
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="../shared/data/movielens-small")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Settings(
            data_dir=Path(tmp),
            train_on_start=False,
            train_interval_seconds=0,
            log_level="WARNING",
            # measure serving, not the limiter: a load test is one caller
            rate_limit_per_key=0,
            rate_limit_per_tenant=0,
        )
        with database(base) as settings:
            asyncio.run(run(args, settings))


if __name__ == "__main__":
    main()
