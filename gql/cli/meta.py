"""``recograph schema``, ``settings`` and ``graphiql-assets``: about the service itself."""

from __future__ import annotations

import click


@click.command()
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from gql.schema import sdl

    click.echo(sdl(), nl=False)


@click.command(name="graphiql-assets")
@click.option("--force", is_flag=True, help="Download again even if present.")
def graphiql_assets_cmd(force: bool) -> None:
    """Download the GraphiQL assets from the npm registry (done once at setup)."""
    from gql.server import graphiql as graphiql_assets

    click.echo(f"GraphiQL assets in {graphiql_assets.fetch_assets(force=force)}")


@click.command()
def settings() -> None:
    """Print the configuration table (Markdown)."""
    from gql.server.settings import settings_table

    click.echo(settings_table())
