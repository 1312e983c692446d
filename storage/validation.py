"""Checks every write goes through, each failing with a ``InputError`` that names the field."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from engines.errors import ErrorCode, InputError

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    max_id_length: int = 256
    max_text_length: int = 100_000
    max_attributes_bytes: int = 64 * 1024
    max_labels: int = 200
    max_label_length: int = 256
    max_batch_size: int = 20_000
    future_tolerance: timedelta = timedelta(hours=1)
    max_embedding_dim: int = 2000
    max_json_depth: int = 20


#: largest magnitude of an event's weight or value (sums of many stay finite)
MAX_MAGNITUDE = 1e9

#: what an embedding value may be: the largest float32 (pgvector stores float32)
FLOAT32_MAX = 3.4028234663852886e38


def check_id(value: str, path: Path, limits: Limits) -> InputError | None:
    if not value or not value.strip():
        return InputError(path, "must not be blank", ErrorCode.BLANK)
    if len(value) > limits.max_id_length:
        return InputError(
            path, f"is longer than {limits.max_id_length} characters", ErrorCode.TOO_LONG
        )
    if any(ord(c) < 32 for c in value):
        return InputError(path, "must not contain control characters", ErrorCode.INVALID)
    if why := unstorable(value):
        return InputError(path, why, ErrorCode.INVALID)
    return None


def check_text(value: str | None, path: Path, limits: Limits) -> InputError | None:
    if value is not None and len(value) > limits.max_text_length:
        return InputError(
            path, f"is longer than {limits.max_text_length} characters", ErrorCode.TOO_LONG
        )
    if value is not None and (why := unstorable(value)):
        return InputError(path, why, ErrorCode.INVALID)
    return None


def check_labels(values: Sequence[str], path: Path, limits: Limits) -> InputError | None:
    if len(values) > limits.max_labels:
        return InputError(path, f"has more than {limits.max_labels} entries", ErrorCode.TOO_MANY)
    for i, v in enumerate(values):
        if not v.strip():
            return InputError((*path, str(i)), "must not be blank", ErrorCode.BLANK)
        if len(v) > limits.max_label_length:
            return InputError(
                (*path, str(i)),
                f"must be at most {limits.max_label_length} characters",
                ErrorCode.TOO_LONG,
            )
        if why := unstorable(v):
            return InputError((*path, str(i)), why, ErrorCode.INVALID)
    return None


def _json_problem(obj: Any, max_depth: int) -> tuple[ErrorCode, str] | None:
    """Depth, non-finite numbers and unstorable strings of a JSON value (iteratively, so a
    deeply nested value cannot exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > max_depth:
            return ErrorCode.TOO_DEEP, f"must not be nested deeper than {max_depth} levels"
        if isinstance(value, float) and not math.isfinite(value):
            return ErrorCode.NOT_FINITE, "must not contain NaN or infinite numbers"
        if isinstance(value, str) and (why := unstorable(value)):
            return ErrorCode.INVALID, f"has a string that {why}"
        if isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str) and (why := unstorable(k)):
                    return ErrorCode.INVALID, f"has a key that {why}"
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    return None


def unstorable(value: str) -> str | None:
    """Why PostgreSQL cannot store ``value`` as text (None when it can)."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate"
    return None


def check_json_object(value: Any, path: Path, limits: Limits) -> InputError | None:
    if not isinstance(value, dict):
        return InputError(path, "must be a JSON object", ErrorCode.INVALID)
    if problem := _json_problem(value, limits.max_json_depth):
        return InputError(path, problem[1], problem[0])
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return InputError(path, f"is not valid JSON: {exc}", ErrorCode.INVALID)
    if len(encoded.encode()) > limits.max_attributes_bytes:
        return InputError(
            path, f"is larger than {limits.max_attributes_bytes} bytes", ErrorCode.TOO_LARGE
        )
    return None


def check_finite(
    value: float | None, path: Path, limit: float = MAX_MAGNITUDE
) -> InputError | None:
    if value is not None and not math.isfinite(value):
        return InputError(path, "must be a finite number", ErrorCode.NOT_FINITE)
    if value is not None and abs(value) > limit:
        return InputError(path, f"must lie between {-limit:g} and {limit:g}", ErrorCode.INVALID)
    return None


def check_timestamp(
    value: datetime | None, path: Path, limits: Limits, now: datetime
) -> InputError | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return InputError(path, "must include a time zone offset", ErrorCode.INVALID)
    try:  # e.g. 0001-01-01T00:00+14:00 has no UTC time (PostgreSQL stores UTC)
        if value.astimezone(UTC).year < 1900:
            raise OverflowError
    except OverflowError:
        return InputError(path, "must lie after 1900", ErrorCode.INVALID)
    if value > now + limits.future_tolerance:
        return InputError(path, "lies in the future", ErrorCode.IN_FUTURE)
    return None


def check_embedding(values: Sequence[float], path: Path, limits: Limits) -> InputError | None:
    if not 1 <= len(values) <= limits.max_embedding_dim:
        return InputError(
            path, f"must have 1..{limits.max_embedding_dim} dimensions", ErrorCode.INVALID
        )
    if not all(math.isfinite(v) and abs(v) <= FLOAT32_MAX for v in values):
        return InputError(
            path, "must contain only finite numbers within float32 range", ErrorCode.NOT_FINITE
        )
    if not any(values):
        return InputError(path, "must not be the zero vector", ErrorCode.INVALID)
    return None


def check_batch(size: int, path: Path, limits: Limits) -> InputError | None:
    if size > limits.max_batch_size:
        return InputError(
            path, f"has {size} rows; at most {limits.max_batch_size} per call", ErrorCode.TOO_MANY
        )
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)
