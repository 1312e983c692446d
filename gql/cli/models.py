"""``recograph train`` and ``recograph plugins``: models and the plugins behind them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from gql.cli.common import data_dir_option, load_settings, with_store


@click.command()
@data_dir_option
@click.option(
    "--algorithm",
    "-a",
    "algorithms",
    multiple=True,
    help="Algorithm to train (repeatable); all when left out.",
)
@click.option("--tenant", default="default", show_default=True)
def train(data_dir: Path | None, algorithms: tuple[str, ...], tenant: str) -> None:
    """Train models on the stored events and save them as new versions (running servers
    pick them up without a restart)."""
    from engines.errors import RecographError
    from gql.server.runtime import for_command

    async def work(store: Any) -> list[Any]:
        settings = load_settings(data_dir)
        # watched users whose lists the new models change get their webhooks
        async with for_command(store, settings) as runtime:
            results = await runtime.trainer.train(tenant, list(algorithms) or None)
        # the content vectors just stored get their search index now, not at the
        # trainer's next sweep
        await store.vectors.indexes.sweep(quiet=0, tenant=tenant)
        return results

    try:
        results = with_store(data_dir, work)
    except RecographError as exc:
        raise click.ClickException(str(exc)) from None
    for r in results:
        click.echo(
            f"{r.algorithm}: version {r.version} in {r.seconds:.2f}s "
            f"({r.n_users} users, {r.n_items} items, {r.n_events} events)"
        )
        for key, value in r.report.items():
            click.echo(f"  {key}: {json.dumps(value, sort_keys=True)}")


@click.command()
def plugins() -> None:
    """List the plugins that load: their versions, the hooks they implement and what they
    register (RECOGRAPH_PLUGINS and RECOGRAPH_PLUGIN_CONFIG apply)."""
    from gql.server.runtime import load_registry

    registry = load_registry(load_settings(None))
    for info in registry.report.loaded:
        kind = "built-in" if info.builtin else info.module
        click.echo(f"{info.name} {info.version} ({kind})")
        click.echo(f"  hooks: {', '.join(info.hooks) or '-'}")
        for label, owners in (
            ("algorithms", registry.algorithm_plugins),
            ("embedders", registry.embedder_plugins),
        ):
            names = sorted(n for n, p in owners.items() if p == info.name)
            if names:
                click.echo(f"  {label}: {', '.join(names)}")
    if registry.presets:
        click.echo(f"presets: {', '.join(sorted(registry.presets))}")
    for name, error in registry.report.failed.items():
        click.echo(f"{name}: FAILED TO LOAD: {error}", err=True)
