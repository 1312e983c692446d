"""The ``recograph`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import click

from gql.server.settings import Settings

Report = Any


def _settings(data_dir: Path | None) -> Settings:
    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    from gql.server.observability import configure_logging

    configure_logging(settings.log_level, settings.json_logs)
    return settings


def _with_store(data_dir: Path | None, work: Callable[[Any], Awaitable[Any]]) -> Any:
    from gql.server.database import database, store_for

    async def run(settings: Settings) -> Any:
        async with store_for(settings) as store:
            return await work(store)

    with database(_settings(data_dir)) as settings:
        return asyncio.run(run(settings))


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory of the embedded PostgreSQL (default: the user data dir).",
)


@click.group()
def main() -> None:
    """Recograph: a recommendation engine with a GraphQL API."""


@main.command()
@data_dir_option
@click.option("--host", default=None, help="Address to bind (default from settings).")
@click.option("--port", type=int, default=None, help="Port to bind (default from settings).")
def serve(data_dir: Path | None, host: str | None, port: int | None) -> None:
    """Run the GraphQL API server (embedded PostgreSQL unless DATABASE_URL is set)."""
    from aiohttp import web

    from gql.server.app import create_app
    from gql.server.database import database

    settings = _settings(data_dir)
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


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@data_dir_option
def upgrade(data_dir: Path | None) -> None:
    """Apply database migrations."""

    async def work(store: Any) -> None:  # Store.open already migrated
        click.echo("database is at the latest revision")

    _with_store(data_dir, work)


def _print_report(name: str, report: Report) -> None:
    click.echo(
        f"{name}: {report.written} written, {report.duplicates} duplicates, "
        f"{len(report.errors)} refused"
    )
    for err in report.errors[:20]:
        click.echo(f"  {'.'.join(err.field)}: {err.message} [{err.code}]", err=True)
    if len(report.errors) > 20:
        click.echo(f"  ... and {len(report.errors) - 20} more", err=True)


@main.command(name="import")
@data_dir_option
@click.argument("kind", type=click.Choice(["items", "users", "interactions", "movielens"]))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any row was refused.")
def import_(data_dir: Path | None, kind: str, path: Path, quiet: bool, strict: bool) -> None:
    """Load CSV/JSONL files, or a MovieLens directory (movies.csv, ratings.csv, tags.csv).

    Refused rows are listed with their row number; the others are written. Re-running an
    import is safe for events with idempotency keys (MovieLens ratings get one)."""
    from storage.io import importer as importing

    async def work(store: Any) -> list[tuple[str, Report]]:
        progress = not quiet
        if kind == "movielens":
            items, events = await importing.import_movielens(store, path, progress=progress)
            return [("items", items), ("interactions", events)]
        rows = importing.read_rows(path)
        if kind == "items":
            return [("items", await importing.import_items(store, rows, progress=progress))]
        if kind == "users":
            return [("users", await importing.import_users(store, rows, progress=progress))]
        events = (importing.event_of(r) for r in rows)
        return [("interactions", await importing.import_events(store, events, progress=progress))]

    reports = _with_store(data_dir, work)
    for name, report in reports:
        _print_report(name, report)
    if strict and any(r.errors for _, r in reports):
        sys.exit(1)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@main.command()
@data_dir_option
@click.argument("kind", type=click.Choice(["items", "users", "interactions"]))
@click.option("-o", "--output", type=click.File("w"), default="-", help="File (default stdout).")
def export(data_dir: Path | None, kind: str, output: TextIO) -> None:
    """Write items, users or interactions as JSON lines (re-importable)."""
    from storage.tables import DEFAULT_TENANT

    async def work(store: Any) -> int:
        count = 0
        if kind == "items":
            async for rec in store.items.iterate(DEFAULT_TENANT):
                row = {
                    "id": rec.external_id,
                    "entity_type": rec.entity_type,
                    "title": rec.title,
                    "text": rec.text,
                    "categories": rec.categories,
                    "tags": rec.tags,
                    "attributes": rec.attributes,
                    "hidden": rec.hidden,
                }
                output.write(json.dumps(row, default=_json_default) + "\n")
                count += 1
        elif kind == "users":
            async for rec in store.users.iterate(DEFAULT_TENANT):
                row = {"id": rec.external_id, "attributes": rec.attributes}
                output.write(json.dumps(row) + "\n")
                count += 1
        else:
            async for ev in store.interactions.iterate_export(DEFAULT_TENANT):
                ev.pop("id")
                ev["timestamp"] = ev.pop("occurred_at")
                output.write(json.dumps(ev, default=_json_default) + "\n")
                count += 1
        return count

    count = _with_store(data_dir, work)
    click.echo(f"exported {count} {kind}", err=True)


@main.command()
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
    from engines.serving.service import EngineError
    from gql.server.runtime import EngineRuntime

    async def work(store: Any) -> list[Any]:
        settings = _settings(data_dir)
        runtime = EngineRuntime.build(store, settings)
        return await runtime.trainer.train(tenant, list(algorithms) or None)

    try:
        results = _with_store(data_dir, work)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    for r in results:
        click.echo(
            f"{r.algorithm}: version {r.version} in {r.seconds:.2f}s "
            f"({r.n_users} users, {r.n_items} items, {r.n_events} events)"
        )


@main.command()
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
        settings = _settings(data_dir)
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

    _with_store(data_dir, work)


@main.group()
def keys() -> None:
    """Create, list and revoke API keys (and with them, tenants)."""


@keys.command(name="create")
@data_dir_option
@click.option(
    "--tenant",
    default="default",
    show_default=True,
    help="Tenant of the key; created with default interaction types if new.",
)
@click.option("--name", required=True)
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(["admin", "write", "read", "recommend"]),
)
def keys_create(data_dir: Path | None, tenant: str, name: str, scopes: tuple[str, ...]) -> None:
    """Print a new key once; only its hash is stored."""

    async def work(store: Any) -> str:
        await store.ensure_tenant(tenant)
        _, secret = await store.api_keys.create(tenant, name, list(scopes))
        return str(secret)

    click.echo(_with_store(data_dir, work))


@keys.command(name="list")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
def keys_list(data_dir: Path | None, tenant: str) -> None:
    async def work(store: Any) -> list[Any]:
        return list(await store.api_keys.list(tenant))

    for k in _with_store(data_dir, work):
        state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
        click.echo(f"{k.prefix}  {k.name}  {','.join(k.scopes)}  {state}")


@keys.command(name="revoke")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
@click.argument("prefix")
def keys_revoke(data_dir: Path | None, tenant: str, prefix: str) -> None:
    async def work(store: Any) -> bool:
        return bool(await store.revoke_api_key(tenant, prefix))

    if not _with_store(data_dir, work):
        raise click.ClickException(f"no active key {prefix!r} in tenant {tenant!r}")
    click.echo(f"revoked {prefix}")


@main.group(name="user-tokens")
def user_tokens() -> None:
    """Signed user tokens that let a browser-safe `recommend` key act for one user."""


@user_tokens.command(name="create")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
@click.option("--user", "user_id", required=True, help="Your id of the user.")
@click.option("--ttl", default=3600, show_default=True, help="Seconds the token is valid.")
def user_tokens_create(data_dir: Path | None, tenant: str, user_id: str, ttl: int) -> None:
    """Print a token for USER (your backend usually mints them with userTokenCreate)."""
    from gql.server.auth import mint_user_token

    async def work(store: Any) -> str:
        return mint_user_token(await store.tenant_secret(tenant), user_id, ttl)[0]

    click.echo(_with_store(data_dir, work))


@user_tokens.command(name="rotate-secret")
@data_dir_option
@click.option("--tenant", default="default", show_default=True)
def user_tokens_rotate(data_dir: Path | None, tenant: str) -> None:
    """Replace the tenant's signing secret: every token issued so far stops working
    (replicas notice within a minute)."""

    async def work(store: Any) -> None:
        await store.rotate_tenant_secret(tenant)

    _with_store(data_dir, work)
    click.echo(f"rotated the user-token secret of {tenant}")


@main.command()
def schema() -> None:
    """Print the GraphQL schema (SDL)."""
    from gql.schema import sdl

    click.echo(sdl(), nl=False)


@main.command(name="graphiql-assets")
@click.option("--force", is_flag=True, help="Download again even if present.")
def graphiql_assets_cmd(force: bool) -> None:
    """Download the GraphiQL assets from the npm registry (done once at setup)."""
    from gql.server import graphiql as graphiql_assets

    click.echo(f"GraphiQL assets in {graphiql_assets.fetch_assets(force=force)}")


@main.command()
def settings() -> None:
    """Print the configuration table (Markdown)."""
    from gql.server.settings import settings_table

    click.echo(settings_table())


def _register_evaluation() -> None:
    from gql.cli.evaluate import evaluate, tune

    main.add_command(evaluate)
    main.add_command(tune)


_register_evaluation()

if __name__ == "__main__":
    main()
