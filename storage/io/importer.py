"""Loading items, users and events from CSV/JSONL files, and MovieLens-style directories.

Each row is parsed on its own (pydantic): a bad cell ("four" as a rating, "yesterday" as a
time, a line that is not JSON) is reported with its row number and field, and every other
row is written."""

from __future__ import annotations

import csv
import json
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator
from tqdm import tqdm

from engines.datasets import movielens_movies, movielens_ratings
from engines.errors import ErrorCode, InputError
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
#: file column -> the API's field name, for error paths
API_FIELDS = {
    "user_id": "userId",
    "item_id": "itemId",
    "idempotency_key": "idempotencyKey",
    "entity_type": "entityType",
}


@dataclass
class ImportReport:
    written: int = 0
    duplicates: int = 0
    errors: list[InputError] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line of a file that could not be read as a row."""

    message: str


def read_rows(path: Path) -> Iterator[dict[str, Any] | BadLine]:
    """Rows of a ``.csv`` (header line) or ``.jsonl`` file; unreadable lines as BadLine."""
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        with path.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    yield BadLine(f"not a JSON object: {str(exc)[:100]}")
                    continue
                yield value if isinstance(value, dict) else BadLine("not a JSON object")
    else:
        with path.open(encoding="utf-8", errors="replace", newline="") as fh:
            yield from csv.DictReader(fh)


def _blank_to_none(value: Any) -> Any:
    return None if value == "" else value


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else None
    return value


def _labels(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [v for v in str(value).split("|") if v]


def parse_time(value: Any) -> datetime | None:
    """Unix seconds or ISO 8601 (a time without zone is taken as UTC)."""
    if value in (None, ""):
        return None
    if isinstance(value, int | float) or str(value).replace(".", "", 1).isdigit():
        return datetime.fromtimestamp(float(value), UTC)
    ts = datetime.fromisoformat(str(value))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


class EventRow(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    user_id: str = ""
    item_id: str = ""
    type: str = ""
    weight: float | None = None
    value: float | None = None
    timestamp: datetime | None = None
    metadata: dict[str, Any] | None = None
    idempotency_key: str | None = None

    blanks_to_none = field_validator("*", mode="before")(_blank_to_none)

    @field_validator("user_id", "item_id", "type", "idempotency_key", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("timestamp", mode="before")
    @classmethod
    def _time(cls, value: Any) -> Any:
        return parse_time(value)

    @field_validator("metadata", mode="before")
    @classmethod
    def _metadata(cls, value: Any) -> Any:
        return _json_object(value)

    def event(self) -> EventInput:
        return EventInput(
            user_id=self.user_id or "",
            item_id=self.item_id or "",
            type=self.type or "",
            weight=self.weight,
            value=self.value,
            timestamp=self.timestamp,
            metadata=self.metadata,
            idempotency_key=self.idempotency_key,
        )


class ItemRow(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str | None = None
    item_id: str | None = None
    entity_type: str | None = None
    title: str | None = None
    text: str | None = None
    categories: list[str] | None = None
    tags: list[str] | None = None
    attributes: dict[str, Any] | None = None
    hidden: bool | None = None

    blanks_to_none = field_validator(
        "id", "item_id", "entity_type", "title", "text", mode="before"
    )(_blank_to_none)

    @field_validator("id", "item_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("categories", "tags", mode="before")
    @classmethod
    def _label_list(cls, value: Any) -> Any:
        return _labels(value) if value is not None else None

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        return _json_object(value)

    @field_validator("hidden", mode="before")
    @classmethod
    def _hidden(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes")
        return value

    def row(self) -> dict[str, Any]:
        """The catalogue's row: columns present in the file, extra columns as attributes."""
        out: dict[str, Any] = {"external_id": self.id or self.item_id or ""}
        given = self.model_fields_set
        for key in ("entity_type", "title", "text", "categories", "tags", "hidden"):
            if key in given and getattr(self, key) is not None:
                out[key] = getattr(self, key)
        extra = {k: v for k, v in (self.model_extra or {}).items() if v not in (None, "")}
        if self.attributes is not None or extra:
            out["attributes"] = {**extra, **(self.attributes or {})}
        return out


class UserRow(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str | None = None
    user_id: str | None = None
    attributes: dict[str, Any] | None = None

    @field_validator("id", "user_id", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attributes(cls, value: Any) -> Any:
        return _json_object(value)

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {"external_id": self.id or self.user_id or ""}
        if self.attributes is not None:
            out["attributes"] = self.attributes
        return out


M = TypeVar("M", bound=BaseModel)


def parse_row(
    model: type[M], raw: dict[str, Any] | BadLine, path: tuple[str, ...]
) -> M | InputError:
    """``raw`` as a ``model``, or the first reason it is not one (naming the field)."""
    if isinstance(raw, BadLine):
        return InputError(path, raw.message, ErrorCode.INVALID)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        column = str(first["loc"][0]) if first["loc"] else ""
        where = (*path, API_FIELDS.get(column, column)) if column else path
        return InputError(where, first["msg"], ErrorCode.INVALID)


def event_of(raw: dict[str, Any] | BadLine) -> EventInput | InputError:
    parsed = parse_row(EventRow, raw, ("", "0"))
    return parsed if isinstance(parsed, InputError) else parsed.event()


def _batches(rows: Iterable[Row], size: int = BATCH) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


Writer = Callable[[list[Any]], Awaitable[tuple[int, int, list[InputError]]]]


def _at_row(error: InputError, section: str, row: int) -> InputError:
    """``error`` (whose path may name a position in a batch) at file row ``row``."""
    rest = error.field[2:] if len(error.field) >= 2 and error.field[1].isdigit() else ()
    return InputError((section, str(row), *rest), error.message, error.code)


async def _import(
    section: str, rows: Iterable[Any | InputError], write: Writer, progress: bool
) -> ImportReport:
    """Write ``rows`` in batches through ``write`` (returning written, duplicates and
    errors). Rows that failed to parse arrive as InputError; every error names the row's
    number in the file (counted from 0, header excluded)."""
    report = ImportReport()
    offset = 0
    with tqdm(desc=section, unit=" rows", disable=not progress) as bar:
        for batch in _batches(rows):
            good, where = [], []
            for n, row in enumerate(batch):
                if isinstance(row, InputError):
                    report.errors.append(_at_row(row, section, offset + n))
                else:
                    good.append(row)
                    where.append(offset + n)
            if good:
                written, duplicates, errors = await write(good)
                report.written += written
                report.duplicates += duplicates
                for e in errors:
                    pos = int(e.field[1]) if len(e.field) >= 2 and e.field[1].isdigit() else 0
                    report.errors.append(_at_row(e, section, where[min(pos, len(where) - 1)]))
            offset += len(batch)
            bar.update(len(batch))
    report.errors.sort(key=lambda e: int(e.field[1]) if len(e.field) > 1 else -1)
    return report


def _as(model: type[M], rows: Iterable[dict[str, Any] | BadLine]) -> Iterator[M | InputError]:
    for raw in rows:
        yield parse_row(model, raw, ("", "0"))


async def import_items(
    store: Store,
    rows: Iterable[dict[str, Any] | BadLine],
    tenant: str = DEFAULT_TENANT,
    progress: bool = True,
) -> ImportReport:
    async def write(batch: list[ItemRow]) -> tuple[int, int, list[InputError]]:
        result = await store.catalog.upsert_items(tenant, [r.row() for r in batch], ("items",))
        return len(result.records), 0, result.errors

    return await _import("items", _as(ItemRow, rows), write, progress)


async def import_users(
    store: Store,
    rows: Iterable[dict[str, Any] | BadLine],
    tenant: str = DEFAULT_TENANT,
    progress: bool = True,
) -> ImportReport:
    async def write(batch: list[UserRow]) -> tuple[int, int, list[InputError]]:
        result = await store.catalog.upsert_users(tenant, [r.row() for r in batch], ("users",))
        return len(result.records), 0, result.errors

    return await _import("users", _as(UserRow, rows), write, progress)


async def import_events(
    store: Store,
    events: Iterable[EventInput | InputError],
    tenant: str = DEFAULT_TENANT,
    progress: bool = True,
) -> ImportReport:
    async def write(batch: list[EventInput]) -> tuple[int, int, list[InputError]]:
        result = await store.events.record(tenant, batch, ("interactions",))
        return result.recorded, result.duplicates, result.errors

    return await _import("interactions", events, write, progress)


def movielens_items(directory: Path) -> Iterator[dict[str, Any]]:
    """MovieLens movies as items: genres become categories, the year an attribute, and the
    free-text tags the item's tags."""
    for movie in movielens_movies(directory):
        yield {
            "id": movie.id,
            "entity_type": "movie",
            "title": movie.title,
            "categories": list(movie.genres),
            "tags": list(movie.tags),
            "attributes": {"year": movie.year} if movie.year is not None else {},
        }


def movielens_events(directory: Path) -> Iterator[EventInput | InputError]:
    """MovieLens ratings as ``rating`` events, keyed so that a re-import records nothing."""
    for r in movielens_ratings(directory):
        yield event_of(
            {
                "user_id": r["userId"],
                "item_id": r["movieId"],
                "type": "rating",
                "value": r["rating"],
                "timestamp": r["timestamp"],
                "idempotency_key": f"ml:{r['userId']}:{r['movieId']}:{r['timestamp']}",
            }
        )


async def import_movielens(
    store: Store, directory: Path, tenant: str = DEFAULT_TENANT, progress: bool = True
) -> tuple[ImportReport, ImportReport]:
    items = await import_items(store, movielens_items(directory), tenant, progress)
    events = await import_events(store, movielens_events(directory), tenant, progress)
    return items, events
