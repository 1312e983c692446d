"""Bounded failure tests on loopback: PostgreSQL restarts, an import killed half-way and
retried, many concurrent writes, and a fuzz pass over the API."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from test_cli import cli_env, postgres_processes

from gql.app import create_app
from gql.runtime import limits_of
from storage.embedded import EmbeddedPostgres
from storage.store import Store

RECORD_ONE = """mutation($i: InteractionRecordInput!) { interactionRecord(input: $i) {
  recordedCount duplicateCount userErrors { code } } }"""


async def test_service_reconnects_after_postgresql_restarts(tmp_path, settings):
    pg = EmbeddedPostgres(tmp_path)
    url = pg.start()
    store = await Store.open(url, None, limits=limits_of(settings))
    own = settings.model_copy(update={"database_url": url, "redis_url": None})
    try:
        async with TestClient(TestServer(create_app(own, store=store))) as client:
            async def ask(query: str) -> tuple[int, dict]:
                resp = await client.post("/graphql", json={"query": query})
                return resp.status, await resp.json()

            await ask('mutation { itemUpsert(input: {item: {id: "kept"}}) { created } }')
            pg.stop()
            status, body = await ask('{ item(id: "kept") { itemId } }')
            assert status == 200 and body["errors"][0]["message"] == "Unexpected error."
            assert (await client.get("/ready")).status == 503
            pg.start()
            status, body = await ask('{ item(id: "kept") { itemId } }')
            assert body == {"data": {"item": {"itemId": "kept"}}}
            assert (await client.get("/ready")).status == 200
    finally:
        await store.close()
        pg.stop()


def write_events(path: Path, n: int) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id", "item_id", "type", "timestamp", "idempotency_key"])
        for k in range(n):
            w.writerow([f"u{k % 997}", f"i{k % 50}", "view", 1_700_000_000 + k, f"evt-{k}"])


def test_an_import_killed_half_way_and_retried_loses_and_duplicates_nothing(tmp_path):
    data_dir = tmp_path / "data"
    items, events = tmp_path / "items.csv", tmp_path / "events.csv"
    items.write_text("id,title\n" + "".join(f"i{k},Item {k}\n" for k in range(50)))
    total = 60_000
    write_events(events, total)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gql.cli", *args, "--data-dir",
                               str(data_dir)], env=cli_env(), capture_output=True, text=True,
                              timeout=300, check=False)

    try:
        assert run("import", "--quiet", "items", str(items)).returncode == 0
        proc = subprocess.Popen([sys.executable, "-m", "gql.cli", "import", "interactions",
                                 str(events), "--data-dir", str(data_dir)], env=cli_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(4.0)
        proc.send_signal(signal.SIGKILL)  # no clean-up at all
        proc.wait(10)
        exported = run("export", "interactions")
        first = len(exported.stdout.splitlines())
        assert 0 < first < total, f"kill came at {first} of {total}: not half-way"
        retried = run("import", "--quiet", "interactions", str(events))
        assert retried.returncode == 0, retried.stderr
        assert f"interactions: {total - first} written, {first} duplicates" in retried.stdout
        rows = [json.loads(line) for line in run("export", "interactions").stdout.splitlines()]
        assert len(rows) == total
        assert len({r["idempotency_key"] for r in rows}) == total
        assert postgres_processes(data_dir) == [], "the killed owner's server was not stopped"
    finally:
        for proc in postgres_processes(data_dir):
            proc.kill()


async def test_ten_thousand_concurrent_writes_are_all_counted(client, gql, store):
    await gql('mutation { itemUpsert(input: {item: {id: "hot"}}) { created } }')
    gate = asyncio.Semaphore(64)
    acknowledged = 0

    async def write(k: int) -> None:
        nonlocal acknowledged
        variables = {"i": {"interaction": {"userId": f"u{k % 300}", "itemId": "hot",
                                           "type": "click"}}}
        async with gate:
            resp = await client.post("/graphql", json={"query": RECORD_ONE,
                                                       "variables": variables})
            body = await resp.json()
        if resp.status == 200 and body["data"]["interactionRecord"]["recordedCount"] == 1:
            acknowledged += 1

    await asyncio.gather(*(write(k) for k in range(10_000)))
    assert acknowledged == 10_000
    assert await store.interactions.count("default") == acknowledged


text = st.text(max_size=300)
number = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10**20, 10**20))
scalar = st.one_of(st.none(), text, number, st.booleans())
json_value = st.recursive(scalar, lambda c: st.one_of(st.lists(c, max_size=4),
                                                       st.dictionaries(text, c, max_size=4)),
                          max_leaves=10)


interactions = st.fixed_dictionaries({}, optional={
    "userId": json_value, "itemId": json_value, "type": json_value, "weight": json_value,
    "value": json_value, "timestamp": json_value, "metadata": json_value,
    "idempotencyKey": json_value})


async def test_fuzzed_inputs_never_cause_a_server_error(client, gql):
    await gql('mutation { itemUpsert(input: {item: {id: "i"}}) { created } }')
    loop = asyncio.get_running_loop()

    async def post(interaction: dict) -> tuple[int, str]:
        resp = await client.post("/graphql", json={
            "query": RECORD_ONE, "variables": {"i": {"interaction": interaction}}})
        return resp.status, await resp.text()

    @hsettings(max_examples=150, deadline=None, database=None,
               suppress_health_check=list(HealthCheck))
    @given(interaction=interactions)
    def check(interaction: dict) -> None:
        # hypothesis drives from a worker thread; requests run on the test's event loop
        status, body = asyncio.run_coroutine_threadsafe(post(interaction), loop).result(30)
        assert status in (200, 400), (status, body)
        assert "Traceback" not in body and "INTERNAL_SERVER_ERROR" not in body
        payload = json.loads(body)
        for error in payload.get("errors") or []:
            assert error["message"] != "Unexpected error.", (interaction, body)

    await asyncio.to_thread(check)
