"""``recograph serve`` and ``recograph trainer``: the API, or only the periodic trainer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from gql.cli.common import data_dir_option, load_settings


@click.command()
@data_dir_option
@click.option("--host", default=None, help="Address to bind (default from settings).")
@click.option("--port", type=int, default=None, help="Port to bind (default from settings).")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="API worker processes on the port (default RECOGRAPH_WORKERS: one per core); "
    "0 runs everything, training included, in this one process.",
)
def serve(data_dir: Path | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Run the GraphQL API server (embedded PostgreSQL unless DATABASE_URL is set)."""
    import sys

    from gql.server.database import database, store_for

    settings = load_settings(data_dir)
    host, port = host or settings.host, port or settings.port
    count = workers if workers is not None else settings.worker_count()
    with database(settings) as settings:
        click.echo(f"Recograph on http://{host}:{port}/graphql")
        if count == 0:
            _serve_here(settings, host, port)
            return

        async def migrate() -> None:  # once, before the workers start
            async with store_for(settings):
                pass

        asyncio.run(migrate())
        from gql.server.supervisor import Supervisor

        status = Supervisor(settings, host, port, count).run()
    sys.exit(status)


def _serve_here(settings: Any, host: str, port: int) -> None:
    from aiohttp import web

    from gql.server.app import create_app

    # run_app turns SIGINT/SIGTERM into a graceful exit, after which ``database`` stops
    # the embedded PostgreSQL.
    web.run_app(create_app(settings), host=host, port=port, print=None, shutdown_timeout=10)


@click.command()
@data_dir_option
@click.option(
    "--interval",
    type=float,
    default=None,
    help="Seconds between trainings (default RECOGRAPH_TRAIN_INTERVAL_SECONDS).",
)
def trainer(data_dir: Path | None, interval: float | None) -> None:
    """Run only the trainer (a dedicated trainer container): trainings requested through
    the API, models missing at start-up, and periodic retraining of changed tenants. New
    versions reach the API replicas over pub/sub."""
    from gql.server.database import database
    from gql.server.supervisor import train_forever

    settings = load_settings(data_dir)
    if interval is not None:
        settings = settings.model_copy(update={"train_interval_seconds": interval})
    with database(settings) as settings:
        asyncio.run(train_forever(settings))
    click.echo("trainer stopped", err=True)
