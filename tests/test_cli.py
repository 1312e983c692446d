"""The ``recograph`` command on the embedded PostgreSQL: serve, stop, durability, export."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

SAMPLE = Path(__file__).parent / "data" / "movielens-sample"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["RECOGRAPH_LOG_LEVEL"] = "WARNING"
    return env


def recograph(*args: str, data_dir: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gql.cli", *args, "--data-dir", str(data_dir)],
        env=cli_env(), capture_output=True, text=True, timeout=timeout, check=False,
    )


def post(port: int, query: str, variables: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if proc.info["name"] == "postgres" and str(data_dir) in cmd:
            found.append(proc)
    return found


class Server:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gql.cli", "serve", "--data-dir", str(data_dir),
             "--port", str(self.port)],
            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.proc.stdout.read()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ready", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        self.proc.kill()
        raise AssertionError("server did not become ready")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)


@pytest.fixture
def data_dir(tmp_path: Path):
    d = tmp_path / "data"
    yield d
    for proc in postgres_processes(d):  # never leave a server behind, even on failure
        proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_acknowledged_writes_survive_a_restart(data_dir: Path, sig: int):
    server = Server(data_dir)
    try:
        res = post(server.port, """mutation { itemUpsert(input: {item: {id: "durable",
            title: "Kept"}}) { userErrors { code } } interactionRecord(input: {interaction:
            {userId: "u", itemId: "durable", type: "purchase"}}) { recordedCount } }""")
        assert res["data"]["interactionRecord"]["recordedCount"] == 1
    finally:
        code = server.stop(sig)
    assert code == 0
    assert postgres_processes(data_dir) == [], "embedded PostgreSQL left running"

    server = Server(data_dir)
    try:
        res = post(server.port, """{ item(id: "durable") { title }
            user(id: "u") { interactions(first: 5) { nodes { type item { itemId } } } } }""")
    finally:
        server.stop()
    assert res["data"]["item"] == {"title": "Kept"}
    assert res["data"]["user"]["interactions"]["nodes"] == [
        {"type": "purchase", "item": {"itemId": "durable"}}]


def test_import_export_schema_commands(data_dir: Path, tmp_path: Path):
    imported = recograph("import", "--quiet", "movielens", str(SAMPLE), data_dir=data_dir)
    assert imported.returncode == 0, imported.stderr
    assert "interactions: 597 written" in imported.stdout
    out = tmp_path / "items.jsonl"
    exported = recograph("export", "items", "-o", str(out), data_dir=data_dir)
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 437 and rows[0]["id"] == "1" and rows[0]["title"] == "Toy Story"
    evaluated = subprocess.run(
        [sys.executable, "-m", "gql.cli", "evaluate", "--dataset", "db", "--path",
         str(data_dir), "-a", "item_knn", "-a", "most_popular", "-k", "5"],
        env=cli_env(), capture_output=True, text=True, timeout=300, check=False)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "| item_knn |" in evaluated.stdout and "temporal(0.2)" in evaluated.stderr
    upgrade = recograph("db", "upgrade", data_dir=data_dir)
    assert upgrade.returncode == 0, upgrade.stderr
    assert postgres_processes(data_dir) == []
    schema = subprocess.run([sys.executable, "-m", "gql.cli", "schema"], capture_output=True,
                            text=True, check=True)
    assert schema.stdout == (Path(__file__).parent.parent / "schema.graphql").read_text()


def test_dedicated_trainer_trains_and_stops_cleanly(data_dir: Path):
    assert recograph("import", "--quiet", "movielens", str(SAMPLE),
                     data_dir=data_dir).returncode == 0
    env = cli_env() | {"RECOGRAPH_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gql.cli", "trainer", "--interval", "3600", "--data-dir",
         str(data_dir)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "trained cold_start" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    assert any("trained collaborative v1" in line for line in seen), "".join(seen)
    assert code == 0
    assert postgres_processes(data_dir) == []


def test_a_quick_restart_after_sigkill_leaves_no_postgresql_behind(data_dir: Path):
    """The killed owner is a zombie until its parent reaps it: the next owner must still
    know that it is the last one and stop PostgreSQL when it stops."""
    first = Server(data_dir)
    first.proc.send_signal(signal.SIGKILL)  # not reaped yet: a zombie with a live pid
    second = Server(data_dir)
    try:
        assert post(second.port, "{ __typename }")["data"] == {"__typename": "Query"}
    finally:
        assert second.stop() == 0
    first.proc.wait(timeout=10)
    assert postgres_processes(data_dir) == [], "embedded PostgreSQL left running"


def test_serve_runs_workers_and_trains_in_its_trainer_process(data_dir: Path):
    """Two API workers share one port; `modelTrain` is carried out by the trainer process
    and its model is then served by every worker."""
    server = Server(data_dir)
    try:
        children = psutil.Process(server.proc.pid).children()
        names = sorted(" ".join(c.cmdline()) for c in children)
        assert sum("multiprocessing" in n for n in names) >= 3, names  # 2 workers + trainer
        items = [{"id": f"i{k}", "categories": ["a" if k < 5 else "b"]} for k in range(10)]
        events = [{"userId": f"u{u}", "itemId": f"i{(u + k) % 10}", "type": "view"}
                  for u in range(20) for k in range(3)]
        post(server.port, """mutation($i: ItemsBulkUpsertInput!, $e: InteractionsRecordInput!) {
            itemsBulkUpsert(input: $i) { upsertedCount }
            interactionsRecord(input: $e) { recordedCount } }""",
             {"i": {"items": items}, "e": {"interactions": events}})
        trained = post(server.port, 'mutation { modelTrain(input: {algorithms: ["item_knn"]}) '
                                    "{ models { algorithm version } userErrors { code } } }")
        assert trained["data"]["modelTrain"] == {
            "models": [{"algorithm": "item_knn", "version": 1}], "userErrors": []}
        for _ in range(20):  # whichever worker answers has the new model
            body = post(server.port, '{ recommendations(userId: "u1", first: 3, algorithms: '
                                     '[{name: "item_knn"}]) { item { itemId } } }')
            assert "errors" not in body, body
            assert len(body["data"]["recommendations"]) == 3
    finally:
        assert server.stop() == 0
    assert postgres_processes(data_dir) == []
