"""Write throughput through the API, measured from a separate process.

Starts ``recograph serve`` on a fresh data directory, then measures, in one run (bulk
writes from ``--clients`` concurrent senders, 4 by default, so that the kernel spreads
their connections over the API workers):

- ``itemsBulkUpsert``: items per second, in batches of ``--item-batch``, each item with a
  title, text, categories, attributes and its own ``--dims``-dimensional embedding;
- ``interactionsRecord``: events per second, in batches of ``--event-batch`` (10,000 by
  default), end to end into PostgreSQL (the answer comes after the commit);
- ``interactionRecord``: single events per second from ``wrk`` at 32 connections;
- ``{ __typename }`` from ``wrk`` for the ratio.

    .venv/bin/python bench/ingest.py            # 50,000 items, 1,000,000 events
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout
from server import ROOT, cpu_seconds, ensure_wrk, run_wrk, serving

ITEMS = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  upsertedCount userErrors { field message code } } }"""
EVENTS = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i) {
  recordedCount duplicateCount userErrors { field message code } } }"""
ONE = (
    "mutation($i: InteractionRecordInput!) { interactionRecord(input: $i) "
    "{ recordedCount userErrors { code } } }"
)

#: wrk Lua: each request a new event (own user, item and idempotency key)
LUA_ONE = r"""
local n = 0
local thread_id = 0
setup = function(thread) thread:set("tid", thread_id); thread_id = thread_id + 1 end
request = function()
  n = n + 1
  local body = '{"query": QUERY, "variables": {"i": {"interaction": {"userId": "w' .. tid
    .. '-' .. (n % 5000) .. '", "itemId": "i' .. (n * 7919 % ITEMS) .. '", "type": "view", '
    .. '"idempotencyKey": "one-' .. tid .. '-' .. n .. '"}}}}'
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  if status ~= 200 or not string.find(body, '"recordedCount":1') then
    io.stderr:write("BAD " .. status .. " " .. string.sub(body, 1, 200) .. "\n")
  end
end
"""
LUA_TRIVIAL = r"""
request = function()
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"},
    '{"query": "{ __typename }"}')
end
"""

WORDS = (
    "red blue green light dark small large classic modern soft warm cold fast slow quiet "
    "bright simple deluxe travel garden kitchen office sport music book film game"
).split()


def item(n: int, dims: int, rng: random.Random) -> dict:
    words = rng.sample(WORDS, 6)
    return {
        "id": f"i{n}",
        "title": " ".join(words[:3]).title(),
        "text": " ".join(words),
        "categories": [f"c{n % 40}"],
        "attributes": {"price": round(rng.uniform(1, 100), 2), "stock": n % 17},
        "embedding": [round(rng.gauss(0, 1), 4) for _ in range(dims)],
    }


async def post(session: ClientSession, url: str, query: str, variables: dict) -> dict:
    async with session.post(url, json={"query": query, "variables": variables}) as resp:
        body = await resp.json()
        if resp.status != 200 or "errors" in body:
            raise SystemExit(f"{resp.status}: {json.dumps(body)[:500]}")
        return dict(body["data"])


async def send_all(url: str, query: str, batches: list[dict], clients: int) -> tuple[float, int]:
    """Send ``batches`` from ``clients`` concurrent senders; (seconds, rows written)."""
    queue: asyncio.Queue[dict] = asyncio.Queue()
    for b in batches:
        queue.put_nowait(b)
    written = 0

    async def sender(session: ClientSession) -> None:
        nonlocal written
        while not queue.empty():
            data = next(iter((await post(session, url, query, queue.get_nowait())).values()))
            if data["userErrors"]:
                raise SystemExit(f"refused: {data['userErrors'][:3]}")
            written += int(data.get("upsertedCount", data.get("recordedCount", 0)))

    async with ClientSession(timeout=ClientTimeout(total=600)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(sender(session) for _ in range(clients)))
        return time.perf_counter() - started, written


async def time_vector_index(socket_dir: str, limit: float = 600.0) -> tuple[float, float]:
    """(seconds until the trainer started building the HNSW index, seconds the build
    took), read from the embedded database's catalogue (``socket_dir``) every 0.2 s."""
    import asyncpg

    started = time.perf_counter()
    building: float | None = None
    conn = await asyncpg.connect(host=socket_dir, user="postgres")
    try:
        while time.perf_counter() - started < limit:
            found = await conn.fetch(
                "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname LIKE 'ix_item_vectors_hnsw_%'"
            )
            now = time.perf_counter() - started
            if found and building is None:
                building = now
            if any(r["indisvalid"] for r in found):
                return building or now, now - (building or now)
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise SystemExit(f"no vector index within {limit:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".recograph/bench/ingest")
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--item-batch", type=int, default=5_000)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--event-batch", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    wrk = ensure_wrk()
    shutil.rmtree(args.data_dir, ignore_errors=True)
    rng = random.Random(7)
    items = [item(n, args.dims, rng) for n in range(args.items)]
    item_batches = [
        {"i": {"items": items[s : s + args.item_batch]}}
        for s in range(0, len(items), args.item_batch)
    ]
    t0 = 1_700_000_000
    event_batches = []
    for s in range(0, args.events, args.event_batch):
        rows = []
        for n in range(s, min(s + args.event_batch, args.events)):
            rows.append(
                {
                    "userId": f"u{rng.randrange(args.users)}",
                    "itemId": f"i{min(int(rng.paretovariate(1.2)) - 1, args.items - 1)}",
                    "type": "view",
                    "timestamp": datetime.fromtimestamp(t0 + n, UTC).isoformat(),
                    "idempotencyKey": f"e{n}",
                }
            )
        event_batches.append({"i": {"interactions": rows}})
    rows_out = []
    #: CPU ms (Recograph's processes + PostgreSQL's) per 1,000 rows written, by row label:
    #: it drifts far less than throughput on a shared VM
    cpu: dict[str, tuple[float, float]] = {}
    data_dir = args.data_dir.resolve()
    with serving(args.data_dir, args.workers) as (server, port):
        url = f"http://127.0.0.1:{port}/graphql"
        trivial = run_wrk(wrk, url, LUA_TRIVIAL, args.seconds)
        rows_out.append(("`{ __typename }`", trivial["rps"], "req/s", trivial["p99"]))

        def send(label: str, query: str, batches: list[dict], unit: str) -> tuple[float, int]:
            """Send ``batches``; their rate and CPU per 1,000 rows go under ``label``."""
            before = cpu_seconds(server.pid, data_dir)
            took, n = asyncio.run(send_all(url, query, batches, args.clients))
            after = cpu_seconds(server.pid, data_dir)
            cpu[label] = (1e6 * (after[0] - before[0]) / n, 1e6 * (after[1] - before[1]) / n)
            rows_out.append((label, n / took, unit, None))
            return took, n

        label = f"`itemsBulkUpsert`, {args.item_batch:,} items with {args.dims}-d embeddings"
        took, n = send(label, ITEMS, item_batches, "items/s")
        # the vector index is built in the background once the load pauses: wait for it,
        # so that the events below are measured without it, and count it separately
        socket_dir = str(args.data_dir.resolve() / "pgdata")
        waited, build = asyncio.run(time_vector_index(socket_dir))
        rows_out.append(("… seconds until the vector index build began", waited, "s", None))
        rows_out.append(("… seconds the build took (in the background)", build, "s", None))
        rows_out.append(("… items/s counting the build", n / (took + build), "items/s", None))
        send(f"`interactionsRecord`, {args.event_batch:,}-event batches", EVENTS,
             event_batches, "events/s")  # fmt: skip
        lua = LUA_ONE.replace("QUERY", json.dumps(ONE))  # inside a '…' Lua string
        lua = lua.replace("ITEMS", str(args.items))
        one = run_wrk(wrk, url, lua, args.seconds)
        if one["bad"]:
            print(f"{one['bad']} single events were refused", file=sys.stderr)
        rows_out.append(("`interactionRecord`, one event each", one["rps"], "req/s", one["p99"]))
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.clients} senders in a separate process, "
        "wrk -t2 -c32 for single requests\n"
    )
    print(
        "| write | rate | unit | p99 ms | per `{ __typename }` request of this run "
        "| CPU ms per 1,000 rows: Recograph + PostgreSQL |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for name, rate, unit, p99 in rows_out:
        p99_text = f"{p99:.1f}" if p99 is not None else "–"
        # requests: their share of the trivial rate; rows: how many per trivial request
        ratio = f"{rate / trivial['rps']:.2f}" if unit.endswith("/s") else "–"
        rate_text = f"{rate:.1f}" if unit == "s" else f"{rate:,.0f}"
        used = f"{cpu[name][0]:,.0f} + {cpu[name][1]:,.0f}" if name in cpu else "–"
        print(f"| {name} | {rate_text} | {unit} | {p99_text} | {ratio} | {used} |")


if __name__ == "__main__":
    main()
