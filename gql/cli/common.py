"""What every command shares: settings, logging, and a store on the configured (or the
embedded) PostgreSQL for the length of one command."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from gql.server.settings import Settings


def load_settings(data_dir: Path | None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    from gql.server.observability import configure_logging

    configure_logging(settings.log_level, settings.json_logs)
    return settings


def with_store(data_dir: Path | None, work: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run ``work(store)`` to completion (starting and stopping an embedded database)."""
    from gql.server.database import database, store_for

    async def run(settings: Settings) -> Any:
        async with store_for(settings) as store:
            return await work(store)

    with database(load_settings(data_dir)) as settings:
        return asyncio.run(run(settings))


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the embedded PostgreSQL (default: the user data dir).",
)
