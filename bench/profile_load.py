"""Profile one API worker under load: ``recograph serve --workers 1``, one workload from
``http_load.py`` driven by ``wrk``, and ``py-spy`` sampling the worker meanwhile.

    .venv/bin/python bench/profile_load.py --only recommend --out /tmp/recommend.txt

The output is py-spy's collapsed stacks; ``--top`` prints the functions with the most
samples, inclusive and exclusive (py-spy must be installed: ``pip install py-spy``).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_load import ROOT, lua_for, sample_ids, workloads
from server import ensure_wrk, run_wrk, serving


def summary(collapsed: Path, top: int) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    exclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        for frame in set(frames):
            inclusive[frame] += n
        exclusive[frames[-1]] += n
    out = [f"{total} samples", "inclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    out += ["exclusive:"]
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in exclusive.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / ".recograph/bench/movielens")
    parser.add_argument("--only", default="recommend")
    parser.add_argument("--users", default="1-610")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    wrk = ensure_wrk()
    env = {"RECOGRAPH_RECOMMENDATION_CACHE_SECONDS": "0"}
    with serving(args.data_dir, workers=1, env=env) as (server, port):
        lo, hi = (int(x) for x in args.users.split("-"))
        _, items = sample_ids(port)
        bodies = workloads([str(u) for u in range(lo, hi + 1)], items, ["toy story"])[args.only]
        url = f"http://127.0.0.1:{port}/graphql"
        script = lua_for(bodies)
        run_wrk(wrk, url, script, 2, 32, 1)
        worker = subprocess.run(
            ["pgrep", "-f", "-P", str(server.pid), "spawn_main"], capture_output=True, text=True
        ).stdout.split()
        record = [spy, "record", "-r", "200", "-f", "raw", "-o", str(args.out)]
        record += ["-d", str(args.seconds - 2), "--nonblocking", "-p", worker[0]]
        result: dict = {}
        load = threading.Thread(
            target=lambda: result.update(run_wrk(wrk, url, script, args.seconds, 32, 1))
        )
        load.start()
        subprocess.run(record, check=True, capture_output=True)
        load.join()
    print(result)
    print(summary(args.out, args.top))


if __name__ == "__main__":
    main()
