"""Start ``recograph serve`` for a benchmark, as a user would, and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: a benchmark measures the service, not its guards or its trainer
BENCH_ENV = {
    "RECOGRAPH_RATE_LIMIT_PER_KEY": "0",
    "RECOGRAPH_RATE_LIMIT_PER_TENANT": "0",
    "RECOGRAPH_TRAIN_ON_START": "false",
    "RECOGRAPH_TRAIN_INTERVAL_SECONDS": "0",
    "RECOGRAPH_TRAIN_ON_GROWTH": "0",  # an ingest benchmark must not train as it writes
    "RECOGRAPH_LOG_LEVEL": "WARNING",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_wrk() -> str:
    """Debian's ``wrk``, installed if absent."""
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian's packages", file=sys.stderr)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or "wrk"


@contextlib.contextmanager
def serving(
    data_dir: Path, workers: int | None = None, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``recograph serve`` on the embedded PostgreSQL of ``data_dir``; yields it and its port
    once ``/ready`` answers."""
    port = free_port()
    environ = {**os.environ, **BENCH_ENV, **(env or {})}
    environ.pop("DATABASE_URL", None)
    command = [sys.executable, "-m", "gql.cli", "serve", "--data-dir", str(data_dir)]
    command += ["--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    server = subprocess.Popen(command, env=environ, cwd=ROOT)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start") from None
                time.sleep(0.3)
        yield server, port
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)


def run_wrk(
    wrk: str, url: str, script: str, seconds: int, connections: int = 32, threads: int = 2
) -> dict:
    """Drive ``url`` with the Lua ``script``: requests/s, p50/p90/p99 in ms, and the
    responses the script reported as bad (lines starting with ``BAD`` on stderr) or that
    were not 2xx, and the timeouts."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
        path = fh.name
    try:
        out = subprocess.run(
            [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
             "--timeout", "10s", "-s", path, url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        os.unlink(path)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    pct = {}
    for p in ("50", "90", "99"):
        m = re.search(rf"\s{p}(?:\.000)?%\s+([\d.]+)(us|ms|s)", text)
        if m:
            value, unit = float(m.group(1)), m.group(2)
            pct[p] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    bad = len([line for line in out.stderr.splitlines() if line.startswith("BAD")])
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    timeouts = re.search(r"timeout (\d+)", text)
    return {
        "rps": rps,
        "p50": pct.get("50"),
        "p90": pct.get("90"),
        "p99": pct.get("99"),
        "bad": bad + (int(errors.group(1)) if errors else 0),
        "timeouts": int(timeouts.group(1)) if timeouts else 0,
    }


def cpu_seconds(pid: int, data_dir: Path) -> tuple[float, float]:
    """CPU time (user + system) used so far by the server's own processes (supervisor,
    API workers, trainer) and by PostgreSQL's: per-request CPU drifts far less than
    throughput on a shared VM, so it is what small changes are compared by."""
    import psutil

    ours = postgres = 0.0
    root = psutil.Process(pid)
    processes = [root, *root.children(recursive=True)]
    for proc in psutil.process_iter(["cmdline"]):  # the embedded server runs detached
        if str(data_dir) in " ".join(proc.info["cmdline"] or ()) and proc not in processes:
            processes += [proc, *proc.children(recursive=True)]
    for proc in processes:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            # with the exited children it reaped (PostgreSQL's backends come and go), so a
            # process that ends during a measurement does not take its CPU time with it
            used = t.user + t.system + t.children_user + t.children_system
            if "postgres" in proc.name():
                postgres += used
            else:
                ours += used
    return ours, postgres
