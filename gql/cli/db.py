"""``recograph db``: database maintenance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from gql.cli.common import data_dir_option, with_store


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@data_dir_option
def upgrade(data_dir: Path | None) -> None:
    """Apply database migrations."""

    async def work(store: Any) -> None:  # Store.open already migrated
        click.echo("database is at the latest revision")

    with_store(data_dir, work)
