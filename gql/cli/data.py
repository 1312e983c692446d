"""``recograph import`` and ``recograph export``: files in, files out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import click

from gql.cli.common import data_dir_option, load_settings, with_store
from storage.io.importer import ImportReport
from storage.tables import DEFAULT_TENANT


def _print_report(name: str, report: ImportReport) -> None:
    click.echo(
        f"{name}: {report.written} written, {report.duplicates} duplicates, "
        f"{len(report.errors)} refused"
    )
    for err in report.errors[:20]:
        click.echo(f"  {'.'.join(err.field)}: {err.message} [{err.code}]", err=True)
    if len(report.errors) > 20:
        click.echo(f"  ... and {len(report.errors) - 20} more", err=True)


@click.command(name="import")
@data_dir_option
@click.argument("kind", type=click.Choice(["items", "users", "interactions", "movielens"]))
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--strict", is_flag=True, help="Exit with status 1 if any row was refused.")
def import_(data_dir: Path | None, kind: str, path: Path, quiet: bool, strict: bool) -> None:
    """Load CSV/JSONL files, or a MovieLens directory (movies.csv, ratings.csv, tags.csv).

    Refused rows are listed with their row number; the others are written. Re-running an
    import is safe for events with idempotency keys (MovieLens ratings get one)."""
    from gql.server.runtime import for_command
    from storage.io import importer as importing

    async def work(store: Any) -> list[tuple[str, ImportReport]]:
        # watched users whose lists the import changes get their webhooks
        async with for_command(store, load_settings(data_dir)):
            reports = await load(store)
        if kind == "items":  # the only rows that carry embeddings: their index now, not
            await store.vectors.indexes.sweep(quiet=0, tenant=DEFAULT_TENANT)  # at a sweep
        return reports

    async def load(store: Any) -> list[tuple[str, ImportReport]]:
        progress = not quiet
        if kind == "movielens":
            items, events = await importing.import_movielens(store, path, progress=progress)
            return [("items", items), ("interactions", events)]
        rows = importing.read_rows(path)
        if kind == "items":
            return [("items", await importing.import_items(store, rows, progress=progress))]
        if kind == "users":
            return [("users", await importing.import_users(store, rows, progress=progress))]
        parsed = (importing.event_of(r) for r in rows)
        return [("interactions", await importing.import_events(store, parsed, progress=progress))]

    reports = with_store(data_dir, work)
    for name, report in reports:
        _print_report(name, report)
    if strict and any(r.errors for _, r in reports):
        sys.exit(1)


@click.command()
@data_dir_option
@click.argument("kind", type=click.Choice(["items", "users", "interactions"]))
@click.option("-o", "--output", type=click.File("w"), default="-", help="File (default stdout).")
@click.option("--tenant", default="default", show_default=True)
def export(data_dir: Path | None, kind: str, output: TextIO, tenant: str) -> None:
    """Write items, users or interactions as JSON lines (re-importable)."""
    from storage.io.exporter import export as write

    async def work(store: Any) -> int:
        return await write(store, tenant, kind, output)

    count = with_store(data_dir, work)
    click.echo(f"exported {count} {kind}", err=True)
