"""``recograph evaluate`` and ``recograph tune``: offline quality on real data sets."""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import click

from engines.algorithm import Algorithm
from engines.datasets import Events, gowalla, movielens
from engines.evaluation import evaluator as evaluation
from engines.evaluation.baselines import ImplicitAlsDefaults, MostPopular
from engines.host.registry import Registry

# Published Recall@20 / NDCG@20 on the Gowalla NGCF/LightGCN split (see shared data README).
GOWALLA_PUBLISHED = {
    "MF-BPR (NGCF paper)": (0.1291, 0.1109),
    "NGCF": (0.1570, 0.1327),
    "LightGCN": (0.1830, 0.1554),
    "GF-CF": (0.1849, 0.1518),
    "BSPM": (0.1920, 0.1597),
}
BASELINES = {"most_popular": MostPopular, "implicit_als_defaults": ImplicitAlsDefaults}


def database_events(data_dir: Path | None, tenant: str) -> Events:
    """The service's own events and catalogue (embedded PostgreSQL or DATABASE_URL)."""
    import asyncio

    from gql.server.database import database, store_for
    from gql.server.settings import Settings
    from storage.engine_storage import StoreEngineStorage

    async def read(settings: Settings) -> Events:
        async with store_for(settings) as store:
            storage = StoreEngineStorage(store)
            users, items, weights, times = await storage.training_events(tenant)
            return Events(users, items, weights, times, await storage.item_content(tenant))

    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    with database(settings) as ready:
        return asyncio.run(read(ready))


def load_split(
    dataset: str,
    path: Path | None,
    split: str,
    fraction: float,
    seed: int,
    tenant: str = "default",
) -> evaluation.Split:
    if dataset == "db":
        if split == "fixed":
            raise click.UsageError("the database has no fixed split: use temporal or random")
        events = database_events(path, tenant)
    elif dataset == "gowalla":
        assert path is not None
        train, test = gowalla(path)
        if split == "fixed":
            return evaluation.fixed(train, test)
        events = train  # validation: carved from the training file only
    else:
        assert path is not None
        events = movielens(path)
        if split == "fixed":
            raise click.UsageError("movielens has no fixed split: use temporal or random")
    if split == "temporal":
        return evaluation.temporal(events, fraction)
    return evaluation.random_holdout(events, fraction, seed)


def build(
    registry: Registry, names: list[str], configs: dict[str, dict[str, Any]]
) -> dict[str, Algorithm]:
    out: dict[str, Algorithm] = {}
    for name in names:
        if name in BASELINES:
            out[name] = BASELINES[name]()
        elif name in registry.algorithms:
            out[name] = registry.algorithm(name)(configs.get(name, {}))
        else:
            known = ", ".join(sorted([*registry.algorithms, *BASELINES]))
            raise click.UsageError(f"unknown algorithm {name!r}; known: {known}")
    return out


def machine() -> str:
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


@click.command()
@click.option(
    "--dataset",
    type=click.Choice(["gowalla", "movielens", "db"]),
    required=True,
    help="db: the service's own stored events (with --path as its data dir, optional).",
)
@click.option(
    "--path",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Directory of the data set files (or the embedded database for db).",
)
@click.option(
    "--split",
    type=click.Choice(["fixed", "temporal", "random"]),
    default=None,
    help="fixed: the published train/test files; temporal: each user's latest "
    "events; random: per-user random holdout. Default: fixed for gowalla, "
    "temporal for movielens.",
)
@click.option("--fraction", default=0.2, show_default=True, help="Held-out share per user.")
@click.option("--seed", default=0, show_default=True)
@click.option(
    "-a",
    "--algorithm",
    "algorithms",
    multiple=True,
    help="Algorithm or baseline (repeatable). Default: all built-ins + baselines.",
)
@click.option(
    "--blend",
    "blends",
    multiple=True,
    help="Preset or `name:weight,...` blend to evaluate (repeatable).",
)
@click.option(
    "--config",
    "configs",
    multiple=True,
    help="`algorithm:{json}` config for an algorithm (repeatable).",
)
@click.option("-k", default=20, show_default=True)
@click.option("--max-users", type=int, default=None, help="Evaluate a random sample of users.")
@click.option(
    "--cold-users",
    type=int,
    default=None,
    help="Cold-user protocol: a share of test users keeps only this many earliest training "
    "events, and only they are scored.",
)
@click.option("--cold-share", default=0.2, show_default=True, help="Share made cold.")
@click.option(
    "--cold-items",
    type=int,
    default=None,
    help="Cold-item protocol: only test items with fewer training events count.",
)
@click.option(
    "--learn-blends/--no-learn-blends",
    default=True,
    show_default=True,
    help="Also score each blend with the weights training learns on the training part.",
)
@click.option(
    "--diversity",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Also score each blend re-ranked by maximal marginal relevance of this strength.",
)
@click.option(
    "--cold-routing",
    "cold_routing",
    type=(int, float),
    default=None,
    help="EVENTS SHARE: also score each blend with items of fewer training events routed "
    "into that share of each list (the service's RECOGRAPH_COLD_ITEM_EVENTS and "
    "RECOGRAPH_COLD_ITEM_SHARE).",
)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None)
def evaluate(
    dataset: str,
    path: Path | None,
    split: str | None,
    fraction: float,
    seed: int,
    algorithms: tuple[str, ...],
    blends: tuple[str, ...],
    configs: tuple[str, ...],
    k: int,
    max_users: int | None,
    cold_users: int | None,
    cold_share: float,
    cold_items: int | None,
    learn_blends: bool,
    diversity: float,
    cold_routing: tuple[int, float] | None,
    json_out: Path | None,
) -> None:
    """Offline evaluation with full ranking: Recall, NDCG, MAP, precision, coverage and
    popularity bias per algorithm and blend, with fit and scoring times."""
    if path is None and dataset != "db":
        raise click.UsageError("--path is required for file data sets")
    split = split or ("fixed" if dataset == "gowalla" else "temporal")
    registry = Registry.load()
    parsed = {}
    for c in configs:
        name, _, body = c.partition(":")
        parsed[name] = json.loads(body)
    names = list(algorithms) or [*registry.algorithms, *BASELINES]
    blend_weights = {}
    for b in blends:
        if b in registry.presets:
            blend_weights[b] = registry.presets[b]
        else:
            blend_weights[b] = {n: float(w) for n, _, w in (p.partition(":") for p in b.split(","))}
        names += [n for n in blend_weights[b] if n not in names]
    started = time.perf_counter()
    data = load_split(dataset, path, split, fraction, seed)
    users = sorted(evaluation.relevant_sets(data.test))
    if cold_users is not None:
        data, users = evaluation.with_cold_users(data, cold_share, cold_users, seed)
    if max_users is not None and len(users) > max_users:
        users = sorted(random.Random(seed).sample(users, max_users))
    click.echo(
        f"{dataset}, split {data.name}: {len(data.train)} train / {len(data.test)} "
        f"test events, {len(users)} users",
        err=True,
    )
    results = evaluation.evaluate(
        build(registry, names, parsed),
        data,
        k,
        blend_weights,
        users,
        progress=lambda m: click.echo(m, err=True),
        cold_items_below=cold_items,
        learn_blends=learn_blends,
        diversity=diversity,
        cold_routing=cold_routing,
    )
    published = GOWALLA_PUBLISHED if dataset == "gowalla" and split == "fixed" else None
    click.echo(evaluation.table(results, published))
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "dataset": dataset,
                    "split": data.name,
                    "k": k,
                    "users": len(users),
                    "command": " ".join(["recograph", "evaluate", *sys.argv[2:]]),
                    "machine": machine(),
                    "seconds": round(time.perf_counter() - started, 1),
                    "results": [r.row() for r in results],
                    "published": {
                        n: {"recall": r, "ndcg": d} for n, (r, d) in (published or {}).items()
                    },
                },
                indent=2,
            )
        )


def validation_split(dataset: str, path: Path, fraction: float, seed: int) -> evaluation.Split:
    """A validation split carved from training data only, never from the test data."""
    if dataset == "gowalla":
        train, _ = gowalla(path)
        return evaluation.random_holdout(train, fraction, seed)
    outer = evaluation.temporal(movielens(path), fraction)
    return evaluation.temporal(outer.train, fraction)


@click.command()
@click.option("--dataset", type=click.Choice(["gowalla", "movielens"]), required=True)
@click.option(
    "--path", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True
)
@click.option("--fraction", default=0.2, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("-k", default=10, show_default=True)
@click.option(
    "--blend",
    "blend_of",
    default=None,
    help="Comma-separated algorithms whose blend weights to search.",
)
@click.option("--trials", default=60, show_default=True, help="Random blend trials.")
@click.option(
    "--grid",
    "grids",
    multiple=True,
    help='Config grid, `algorithm:{"option": [v1, v2], ...}` (repeatable).',
)
@click.option("--max-users", type=int, default=None)
@click.option(
    "--cold-users",
    type=int,
    default=None,
    help="Tune for new users: a share of users keeps this many training events.",
)
def tune(
    dataset: str,
    path: Path,
    fraction: float,
    seed: int,
    k: int,
    blend_of: str | None,
    trials: int,
    grids: tuple[str, ...],
    max_users: int | None,
    cold_users: int | None,
) -> None:
    """Search blend weights (random search) or algorithm configs (grid) on a validation
    split carved from the training data only."""
    import itertools

    registry = Registry.load()
    split = validation_split(dataset, path, fraction, seed)
    cold: list[int] | None = None
    if cold_users is not None:
        split, cold = evaluation.with_cold_users(split, 0.2, cold_users, seed)
    click.echo(
        f"validation split {split.name}: {len(split.train)} train / "
        f"{len(split.test)} held-out events",
        err=True,
    )
    if blend_of:
        names = [n.strip() for n in blend_of.split(",")]
        algos = {n: registry.algorithm(n)() for n in names}
        weights, _, history = evaluation.tune_blend(algos, split, k, trials, seed, users=cold)
        for w, score in sorted(history, key=lambda t: -t[1])[:5]:
            click.echo(f"NDCG@{k}={score:.4f} {json.dumps({n: round(v, 3) for n, v in w.items()})}")
        click.echo(f"best: {json.dumps({n: round(v, 3) for n, v in weights.items()})}")
    for grid in grids:
        name, _, body = grid.partition(":")
        options = json.loads(body)
        users = cold or sorted(evaluation.relevant_sets(split.test))
        if max_users and len(users) > max_users:
            users = sorted(random.Random(seed).sample(users, max_users))
        keys = list(options)
        for values in itertools.product(*(options[key] for key in keys)):
            config = dict(zip(keys, values, strict=True))
            model = registry.algorithm(name)(config)
            result = evaluation.evaluate({name: model}, split, k, users=users)[0]
            click.echo(
                f"{name} {json.dumps(config)}: recall@{k}={result.recall:.4f} "
                f"ndcg@{k}={result.ndcg:.4f}"
            )
