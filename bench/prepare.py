"""Load a public data set into a benchmark data directory through the CLI, as a user would,
and train every model: ``recograph import`` then ``recograph train``.

    .venv/bin/python bench/prepare.py movielens    # -> .recograph/bench/movielens
    .venv/bin/python bench/prepare.py gowalla      # -> .recograph/bench/gowalla

Prints the wall time of each step and the trainer's report.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def cli(*args: str, data_dir: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "gql.cli", *args, "--data-dir", str(data_dir)],
        check=True,
        env=env,
        cwd=ROOT,
    )
    return time.perf_counter() - started


def gowalla_files(source: Path, out: Path) -> tuple[Path, Path]:
    """The LightGCN train split as an items CSV and a `view` events CSV (one event per
    user-item pair; the split has no times, so events get consecutive seconds)."""
    items, events = out / "items.csv", out / "events.csv"
    seen: set[str] = set()
    t = 1_600_000_000
    with (source / "train.txt").open() as fh, events.open("w", newline="") as ev:
        w = csv.writer(ev)
        w.writerow(["user_id", "item_id", "type", "timestamp", "idempotency_key"])
        for line in fh:
            parts = line.split()
            for item in parts[1:]:
                seen.add(item)
                t += 1
                w.writerow([parts[0], item, "view", t, f"g:{parts[0]}:{item}"])
    with items.open("w", newline="") as it:
        w = csv.writer(it)
        w.writerow(["id", "entity_type"])
        for item in sorted(seen, key=int):
            w.writerow([item, "place"])
    return items, events


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dataset", choices=["movielens", "gowalla"])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--no-train", action="store_true")
    args = parser.parse_args()
    data_dir = args.data_dir or ROOT / ".recograph" / "bench" / args.dataset
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["RECOGRAPH_LOG_LEVEL"] = "WARNING"
    if args.dataset == "movielens":
        took = cli(
            "import",
            "--quiet",
            "movielens",
            str(DATA / "movielens-small"),
            data_dir=data_dir,
            env=env,
        )
        print(f"import: {took:.1f}s")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            items, events = gowalla_files(DATA / "gowalla", Path(tmp))
            took = cli("import", "--quiet", "items", str(items), data_dir=data_dir, env=env)
            print(f"import items: {took:.1f}s")
            took = cli("import", "--quiet", "interactions", str(events), data_dir=data_dir, env=env)
            print(f"import events: {took:.1f}s")
    if not args.no_train:
        print(f"train: {cli('train', data_dir=data_dir, env=env):.1f}s wall")


if __name__ == "__main__":
    main()
