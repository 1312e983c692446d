"""Redis memory of the online state (``storage/online_state.py``), per user and per item.

    REDIS_URL=redis://127.0.0.1:6379/13 .venv/bin/python bench/online_memory.py

Uses (and empties) the database of ``REDIS_URL``. It keeps histories for simulated users,
records sessions of events over a power-law catalogue through the same Lua script the
service runs, and reads ``used_memory`` and ``MEMORY USAGE`` to price each structure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.algorithm import Query, RecordedEvent
from storage.backends import RedisBackend
from storage.online_state import OnlineLimits, RedisOnlineState

MiB = 2**20


async def used(backend: RedisBackend) -> int:
    info = await backend._redis.info("memory")
    return int(info["used_memory"])


async def key_bytes(backend: RedisBackend, pattern: str, sample: int = 200) -> float:
    keys = [k async for k in backend._redis.scan_iter(match=backend.prefix + pattern, count=1000)]
    keys = keys[:sample]
    sizes = [await backend._redis.memory_usage(k, samples=0) or 0 for k in keys]
    return float(np.mean(sizes)) if sizes else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--items", type=int, default=5_000)
    parser.add_argument("--history", type=int, default=20, help="events per kept history")
    parser.add_argument("--sessions", type=int, default=10, help="events per user session")
    args = parser.parse_args()
    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/13")
    backend = RedisBackend(url, prefix="bench:")
    online = RedisOnlineState(backend, OnlineLimits())
    rng = np.random.default_rng(0)
    await backend._redis.flushdb()
    start = await used(backend)

    # 1. kept histories
    for u in range(args.users):
        user = f"user-{u}"
        _, token = await online.history("t", user)
        items = rng.integers(0, args.items, args.history)
        query = Query(
            u + 1,
            items.astype(np.int64),
            np.ones(args.history, np.float32),
            1.7e9 + np.arange(args.history, dtype=np.float64)[::-1],
            0.0,
        )
        await online.remember("t", user, token, query)
    histories = await used(backend) - start
    per_history = await key_bytes(backend, "os:h:*")

    # 2. sessions of events: pairs, counters, per-user counters and session lists
    popularity = 1.0 / np.arange(1, args.items + 1) ** 0.8
    popularity /= popularity.sum()
    before = await used(backend)
    for u in range(args.users):
        items = rng.choice(args.items, args.sessions, p=popularity)
        t0 = 1.7e9 + rng.integers(0, 86_400 * 30)
        events = [
            RecordedEvent(f"user-{u}", str(i), u + 1, int(i), "view", 1.0, None, t0 + 60.0 * n)
            for n, i in enumerate(items)
        ]
        await online.record("t", events)
    recorded = await used(backend) - before
    per_pairs = await key_bytes(backend, "os:co:*")
    full = 0.0
    pair_keys = [k async for k in backend._redis.scan_iter(match="bench:os:co:*", count=1000)]
    cards = [await backend._redis.zcard(k) for k in pair_keys]
    fullest = pair_keys[int(np.argmax(cards))] if cards else None
    if fullest is not None:
        full = float(await backend._redis.memory_usage(fullest, samples=0) or 0)
    trending = float(await backend._redis.memory_usage("bench:os:tr:t", samples=0) or 0)
    per_session = await key_bytes(backend, "os:s:*")
    per_version = await key_bytes(backend, "os:v:*")
    await backend._redis.flushdb()
    await backend.close()

    print(
        f"{args.users:,} users, {args.items:,} items; histories of {args.history} events; "
        f"sessions of {args.sessions} events a minute apart\n"
    )
    print("| structure | bytes each | per million |")
    print("| --- | --- | --- |")
    print(
        f"| kept history ({args.history} events) | {per_history:,.0f} | "
        f"{per_history * 1e6 / MiB:,.0f} MiB per million users |"
    )
    print(
        f"| user's event counter (os:v) | {per_version:,.0f} | "
        f"{per_version * 1e6 / MiB:,.0f} MiB per million active users |"
    )
    print(
        f"| user's session (os:s, ≤ 20 events) | {per_session:,.0f} | "
        f"{per_session * 1e6 / MiB:,.0f} MiB per million users active in the last hour |"
    )
    print(
        f"| item's partners, average ({len(pair_keys):,} items) | {per_pairs:,.0f} | "
        f"{per_pairs * 1e6 / MiB:,.0f} MiB per million items |"
    )
    print(
        f"| item's partners, fullest ({max(cards, default=0)} partners) | {full:,.0f} | "
        f"{full * 1e6 / MiB:,.0f} MiB per million items at the cap |"
    )
    print(f"| trending counters (one per tenant, ≤ 12,000 items) | {trending:,.0f} | |")
    print(
        f"\nused_memory grew by {histories / MiB:.1f} MiB for the histories and "
        f"{recorded / MiB:.1f} MiB for the events"
    )


if __name__ == "__main__":
    asyncio.run(main())
