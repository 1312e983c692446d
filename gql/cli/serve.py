"""``recograph serve`` and ``recograph trainer``: the API, or only the periodic trainer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from gql.cli.common import data_dir_option, load_settings, with_store


@click.command()
@data_dir_option
@click.option("--host", default=None, help="Address to bind (default from settings).")
@click.option("--port", type=int, default=None, help="Port to bind (default from settings).")
def serve(data_dir: Path | None, host: str | None, port: int | None) -> None:
    """Run the GraphQL API server (embedded PostgreSQL unless DATABASE_URL is set)."""
    from aiohttp import web

    from gql.server.app import create_app
    from gql.server.database import database

    settings = load_settings(data_dir)
    with database(settings) as settings:
        app = create_app(settings)
        click.echo(f"Recograph on http://{host or settings.host}:{port or settings.port}/graphql")
        # run_app turns SIGINT/SIGTERM into a graceful exit, after which ``database``
        # stops the embedded PostgreSQL.
        web.run_app(
            app,
            host=host or settings.host,
            port=port or settings.port,
            print=None,
            shutdown_timeout=10,
        )


@click.command()
@data_dir_option
@click.option(
    "--interval",
    type=float,
    default=None,
    help="Seconds between trainings (default RECOGRAPH_TRAIN_INTERVAL_SECONDS).",
)
def trainer(data_dir: Path | None, interval: float | None) -> None:
    """Run only the periodic trainer (for a dedicated trainer container). New versions reach
    the API replicas through Redis pub/sub."""
    import signal

    from gql.server.runtime import EngineRuntime

    async def work(store: Any) -> None:
        settings = load_settings(data_dir)
        runtime = EngineRuntime.build(store, settings)
        period = interval if interval is not None else settings.train_interval_seconds or 3600
        task = asyncio.create_task(runtime.trainer.run_periodically(store.tenants, period))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            click.echo("trainer stopped", err=True)

    with_store(data_dir, work)
