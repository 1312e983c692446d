"""Loading items, users and events from CSV/JSONL files, and MovieLens-style directories."""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

from storage.errors import UserError
from storage.events import EventInput
from storage.store import Store
from storage.tables import DEFAULT_TENANT

BATCH = 5_000
Row = TypeVar("Row")
ITEM_COLUMNS = {
    "id",
    "item_id",
    "entity_type",
    "title",
    "text",
    "categories",
    "tags",
    "attributes",
    "hidden",
}


@dataclass
class ImportReport:
    written: int = 0
    duplicates: int = 0
    errors: list[UserError] = field(default_factory=list)

    def add_errors(self, errors: Iterable[UserError], offset: int) -> None:
        for e in errors:  # make row numbers refer to the file, not the batch
            path = list(e.field)
            if len(path) >= 2 and path[1].isdigit():
                path[1] = str(int(path[1]) + offset)
            self.errors.append(UserError(tuple(path), e.message, e.code))


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a ``.csv`` (header line) or ``.jsonl`` file."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)
    else:
        with path.open(encoding="utf-8", newline="") as fh:
            yield from csv.DictReader(fh)


def _labels(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).split("|") if v]


def item_row(raw: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"external_id": str(raw.get("id") or raw.get("item_id") or "")}
    for key in ("entity_type", "title", "text"):
        if raw.get(key) not in (None, ""):
            row[key] = str(raw[key])
    for key in ("categories", "tags"):
        if key in raw:
            row[key] = _labels(raw[key])
    attributes = raw.get("attributes")
    if isinstance(attributes, str):
        attributes = json.loads(attributes) if attributes else {}
    extra = {k: v for k, v in raw.items() if k not in ITEM_COLUMNS and v not in (None, "")}
    if attributes is not None or extra:
        row["attributes"] = {**extra, **(attributes or {})}
    if "hidden" in raw:
        row["hidden"] = str(raw["hidden"]).lower() in ("1", "true", "yes")
    return row


def parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC)
    ts = datetime.fromisoformat(str(value))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def event_of(raw: dict[str, Any]) -> EventInput:
    metadata = raw.get("metadata")
    if isinstance(metadata, str):
        metadata = json.loads(metadata) if metadata else None
    return EventInput(
        user_id=str(raw.get("user_id", "")),
        item_id=str(raw.get("item_id", "")),
        type=str(raw.get("type", "")),
        weight=_float(raw.get("weight")),
        value=_float(raw.get("value")),
        timestamp=parse_time(raw.get("timestamp")),
        metadata=metadata,
        idempotency_key=raw.get("idempotency_key") or None,
    )


def _batches(rows: Iterable[Row], size: int = BATCH) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


Writer = Callable[[list[Any]], Awaitable[tuple[int, int, list[UserError]]]]


async def _import(name: str, rows: Iterable[Any], write: Writer, progress: bool) -> ImportReport:
    """Write ``rows`` in batches through ``write`` (returning written, duplicates and
    errors), with row numbers in errors counted from the start of the file."""
    report = ImportReport()
    offset = 0
    with tqdm(desc=name, unit=" rows", disable=not progress) as bar:
        for batch in _batches(rows):
            written, duplicates, errors = await write(batch)
            report.written += written
            report.duplicates += duplicates
            report.add_errors(errors, offset)
            offset += len(batch)
            bar.update(len(batch))
    return report


async def import_items(
    store: Store,
    rows: Iterable[dict[str, Any]],
    tenant: str = DEFAULT_TENANT,
    progress: bool = True,
) -> ImportReport:
    async def write(batch: list[dict[str, Any]]) -> tuple[int, int, list[UserError]]:
        result = await store.catalog.upsert_items(tenant, batch, ("items",))
        return len(result.records), 0, result.errors

    return await _import("items", (item_row(r) for r in rows), write, progress)


def user_row(raw: dict[str, Any]) -> dict[str, Any]:
    user: dict[str, Any] = {"external_id": str(raw.get("id") or raw.get("user_id") or "")}
    attrs = raw.get("attributes")
    if attrs is not None:
        user["attributes"] = json.loads(attrs) if isinstance(attrs, str) else attrs
    return user


async def import_users(
    store: Store,
    rows: Iterable[dict[str, Any]],
    tenant: str = DEFAULT_TENANT,
    progress: bool = True,
) -> ImportReport:
    async def write(batch: list[dict[str, Any]]) -> tuple[int, int, list[UserError]]:
        result = await store.catalog.upsert_users(tenant, batch, ("users",))
        return len(result.records), 0, result.errors

    return await _import("users", (user_row(r) for r in rows), write, progress)


async def import_events(
    store: Store,
    events: Iterable[EventInput],
    tenant: str = DEFAULT_TENANT,
    progress: bool = True,
) -> ImportReport:
    async def write(batch: list[EventInput]) -> tuple[int, int, list[UserError]]:
        result = await store.events.record(tenant, batch, ("interactions",))
        return result.recorded, result.duplicates, result.errors

    return await _import("interactions", events, write, progress)


YEAR = re.compile(r"\s*\((\d{4})\)\s*$")


def movielens_items(directory: Path) -> Iterator[dict[str, Any]]:
    """``movies.csv`` as items: genres become categories, the year an attribute, and the
    free-text tags of ``tags.csv`` (if present) the item's tags."""
    tags: dict[str, list[str]] = defaultdict(list)
    tags_file = directory / "tags.csv"
    if tags_file.exists():
        for r in read_rows(tags_file):
            tag = r["tag"].strip().lower()
            if tag and tag not in tags[r["movieId"]] and len(tags[r["movieId"]]) < 50:
                tags[r["movieId"]].append(tag)
    for r in read_rows(directory / "movies.csv"):
        title = r["title"].strip()
        attributes: dict[str, Any] = {}
        if m := YEAR.search(title):
            attributes["year"] = int(m.group(1))
            title = title[: m.start()]
        genres = [g for g in r["genres"].split("|") if g and g != "(no genres listed)"]
        yield {
            "id": r["movieId"],
            "entity_type": "movie",
            "title": title,
            "categories": genres,
            "tags": tags.get(r["movieId"], []),
            "attributes": attributes,
        }


def movielens_events(directory: Path) -> Iterator[EventInput]:
    """``ratings.csv`` as ``rating`` events, keyed so that a re-import records nothing new."""
    for r in read_rows(directory / "ratings.csv"):
        yield EventInput(
            user_id=r["userId"],
            item_id=r["movieId"],
            type="rating",
            value=float(r["rating"]),
            timestamp=datetime.fromtimestamp(int(r["timestamp"]), UTC),
            idempotency_key=f"ml:{r['userId']}:{r['movieId']}:{r['timestamp']}",
        )


async def import_movielens(
    store: Store, directory: Path, tenant: str = DEFAULT_TENANT, progress: bool = True
) -> tuple[ImportReport, ImportReport]:
    items = await import_items(store, movielens_items(directory), tenant, progress)
    events = await import_events(store, movielens_events(directory), tenant, progress)
    return items, events
