"""Serving throughput under load, measured by ``wrk`` in a separate process.

Starts ``recograph serve`` on a prepared data directory (``bench/prepare.py``), then drives
each workload with ``wrk`` (installed from Debian's packages if absent) and prints one
Markdown row per workload: requests per second, latency percentiles, and the ratio to the
trivial query ``{ __typename }`` measured in the same run (this VM's speed drifts, so only
ratios from one run compare).

    .venv/bin/python bench/http_load.py --data-dir .recograph/bench/movielens
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from server import cpu_seconds, ensure_wrk, run_wrk, serving

ROOT = Path(__file__).resolve().parent.parent

#: Lua for wrk: POST one GraphQL operation, rotating through variable sets
LUA = r"""
local bodies = {BODIES}
local n = 0
request = function()
  n = n + 1
  local body = bodies[(n %% #bodies) + 1]
  return wrk.format("POST", "/graphql", {["Content-Type"] = "application/json"}, body)
end
response = function(status, headers, body)
  if status ~= 200 or string.find(body, '"errors"') then
    io.stderr:write("BAD " .. status .. " " .. string.sub(body, 1, 300) .. "\n")
  end
end
"""


#: workload name -> what it sends (the table's first column)
LABELS = {
    "typename": "`{ __typename }`",
    "item": "`item(id) { itemId title }`",
    "recommend": "`recommendations(userId, first: 20)`, default blend",
    "recommend-collaborative": "… only `collaborative`",
    "recommend-rules": "… with a boost, a promoted share and a category cap",
    "recommend-experiment": "… `scenario:` under a running A/B test, with `recommendationId`",
    "similar": "`similarItems(itemId, first: 20)`",
    "trending": "`trending(first: 20)`",
    "search": "`search(text, first: 20)`",
}


def lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


def workloads(users: list[str], items: list[str], words: list[str]) -> dict[str, list[dict]]:
    """Name -> request bodies (operation and variables) for wrk to rotate through."""

    def each(query: str, key: str, values: list[str]) -> list[dict]:
        return [{"query": query, "variables": {key: v}} for v in values]

    return {
        "typename": [{"query": "{ __typename }"}],
        "item": each("query($i: ID!) { item(id: $i) { itemId title } }", "i", items),
        "recommend": each(
            "query($u: String!) { recommendations(userId: $u, first: 20) "
            "{ score item { itemId title } } }",
            "u",
            users,
        ),
        "recommend-collaborative": each(
            "query($u: String!) { recommendations(userId: $u, first: 20, algorithms: "
            '[{name: "collaborative"}]) { score item { itemId title } } }',
            "u",
            users,
        ),
        "recommend-rules": each(
            "query($u: String!) { recommendations(userId: $u, first: 20, maxPerCategory: 8, "
            'boosts: [{filter: {categories: ["Comedy"]}, factor: 1.2}], '
            'promoted: {filter: {categories: ["Documentary"]}, share: 0.1}) '
            "{ score item { itemId title } } }",
            "u",
            users,
        ),
        "recommend-experiment": each(
            'query($u: String!) { recommendations(userId: $u, first: 20, scenario: "bench") '
            "{ recommendationId variant score item { itemId title } } }",
            "u",
            users,
        ),
        "similar": each(
            "query($i: String!) { similarItems(itemId: $i, first: 20) "
            "{ score item { itemId title } } }",
            "i",
            items,
        ),
        "trending": [{"query": "{ trending(first: 20) { score item { itemId title } } }"}],
        "search": each(
            "query($t: String!) { search(text: $t, first: 20) { score item { itemId title } } }",
            "t",
            words,
        ),
    }


def lua_for(bodies: list[dict]) -> str:
    script = LUA.replace(
        "{BODIES}", "{" + ",".join(lua_string(json.dumps(b)) for b in bodies) + "}"
    )
    return script.replace("%%", "%")


def sample_ids(port: int) -> tuple[list[str], list[str]]:
    def post(query: str) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read())

    items = [
        n["itemId"]
        for n in post("{ items(first: 100) { nodes { itemId } } }")["data"]["items"]["nodes"]
    ]
    users = []
    for r in post("{ trending(first: 50) { item { itemId } } }")["data"]["trending"]:
        items.append(r["item"]["itemId"])
    return users, items


def start_experiment(port: int) -> None:
    """Scenarios ``bench`` (the default blend) and ``bench-diverse`` (with diversity 0.3),
    and a running 50/50 experiment of the two on ``bench``."""

    def post(query: str) -> dict:
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            body: dict = json.loads(resp.read())
        assert "errors" not in body, body
        return body["data"]

    for name, extra in (("bench", ""), ("bench-diverse", ", diversity: 0.3")):
        post(
            f'mutation {{ scenarioUpsert(input: {{name: "{name}"{extra}}}) '
            "{ scenario { version } } }"
        )
    created = post(
        'mutation { experimentCreate(input: {name: "bench", scenario: "bench", variants: ['
        '{name: "control", scenario: "bench", share: 0.5}, '
        '{name: "diverse", scenario: "bench-diverse", share: 0.5}]}) { experiment { id } } }'
    )
    eid = created["experimentCreate"]["experiment"]["id"]
    post(f'mutation {{ experimentStart(input: {{id: "{eid}"}}) {{ experiment {{ status }} }} }}')


def resident_sets(pid: int) -> list[str]:
    """RSS of the server's processes (the supervisor, API workers, trainer; PostgreSQL's
    own processes not included)."""
    import psutil

    out = []
    for proc in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            cmd = " ".join(proc.cmdline())
            if "postgres" in proc.name():
                continue
            role = "supervisor" if proc.pid == pid else "worker or trainer"
            if "spawn_main" not in cmd and proc.pid != pid:
                continue
            out.append(f"{role} {proc.memory_info().rss / 2**20:,.0f} MiB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".recograph/bench/movielens")
    parser.add_argument("--users", default="1-610", help="user id range, e.g. 1-610")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument(
        "--only", default=None, help=f"comma-separated workloads of: {', '.join(LABELS)}"
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--cache-seconds",
        type=float,
        default=0,
        help="RECOGRAPH_RECOMMENDATION_CACHE_SECONDS of the server (default 0: every "
        "recommendation is computed; the targets are uncached)",
    )
    args = parser.parse_args()
    wrk = ensure_wrk()
    cache = {"RECOGRAPH_RECOMMENDATION_CACHE_SECONDS": f"{args.cache_seconds:g}"}
    # with the cache on, a longer warm-up lets every worker answer each user once
    warm_up = 6 if args.cache_seconds else 2
    with serving(args.data_dir, args.workers, env=cache) as (server, port):
        lo, hi = (int(x) for x in args.users.split("-"))
        users = [str(u) for u in range(lo, hi + 1)]
        _, items = sample_ids(port)
        words = [
            "toy story",
            "star wars",
            "matrix",
            "godfather",
            "jumanji",
            "comedy",
            "space adventure",
            "love",
            "war",
            "time travel",
        ]
        url = f"http://127.0.0.1:{port}/graphql"
        rows = []
        chosen = workloads(users, items, words)
        if args.only:
            keep = {n.strip() for n in args.only.split(",")} | {"typename"}
            chosen = {k: v for k, v in chosen.items() if k in keep}
        if "recommend-experiment" in chosen:
            start_experiment(port)
        for name, bodies in chosen.items():
            script = lua_for(bodies)
            run_wrk(wrk, url, script, warm_up, args.connections, args.threads)
            before = cpu_seconds(server.pid, args.data_dir.resolve())
            result = run_wrk(wrk, url, script, args.seconds, args.connections, args.threads)
            after = cpu_seconds(server.pid, args.data_dir.resolve())
            served = max(1.0, result["rps"] * args.seconds)
            result["cpu_ms"] = 1000 * (after[0] - before[0]) / served
            result["pg_cpu_ms"] = 1000 * (after[1] - before[1]) / served
            rows.append({"workload": name, **result})
            print(f"{name}: {result}", file=sys.stderr)
        memory = resident_sets(server.pid)
    trivial = rows[0]["rps"]
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; wrk -t{args.threads} -c{args.connections} "
        f"-d{args.seconds}s in a separate process on the same machine; recommendation "
        f"cache {f'{args.cache_seconds:g}s' if args.cache_seconds else 'off'}\n"
    )
    print(
        "| request | req/s | p50 ms | p90 ms | p99 ms | ratio to `{ __typename }` "
        "| CPU ms/request: Recograph + PostgreSQL | errors |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {LABELS[r['workload']]} | {r['rps']:,.0f} | {r['p50'] or 0:.1f} | "
            f"{r['p90'] or 0:.1f} | {r['p99'] or 0:.1f} | {r['rps'] / trivial:.2f} | "
            f"{r['cpu_ms']:.2f} + {r['pg_cpu_ms']:.2f} | {r['bad'] + r['timeouts']} |"
        )
    print("\nresident set sizes after the run: " + ", ".join(memory))
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2)
        )


if __name__ == "__main__":
    main()
