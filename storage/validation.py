"""Checks every write goes through, each failing with a ``UserError`` that names the field."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from storage.errors import ErrorCode, UserError

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


def check_id(value: str, path: Path, limits: Limits) -> UserError | None:
    if not value or not value.strip():
        return UserError(path, "must not be blank", ErrorCode.BLANK)
    if len(value) > limits.max_id_length:
        return UserError(
            path, f"is longer than {limits.max_id_length} characters", ErrorCode.TOO_LONG
        )
    if any(ord(c) < 32 for c in value):
        return UserError(path, "must not contain control characters", ErrorCode.INVALID)
    return None


def check_text(value: str | None, path: Path, limits: Limits) -> UserError | None:
    if value is not None and len(value) > limits.max_text_length:
        return UserError(
            path, f"is longer than {limits.max_text_length} characters", ErrorCode.TOO_LONG
        )
    if value is not None and "\x00" in value:
        return UserError(path, "must not contain NUL characters", ErrorCode.INVALID)
    return None


def check_labels(values: Sequence[str], path: Path, limits: Limits) -> UserError | None:
    if len(values) > limits.max_labels:
        return UserError(path, f"has more than {limits.max_labels} entries", ErrorCode.TOO_MANY)
    for i, v in enumerate(values):
        if not v.strip():
            return UserError((*path, str(i)), "must not be blank", ErrorCode.BLANK)
        if len(v) > limits.max_label_length or "\x00" in v:
            return UserError(
                (*path, str(i)),
                f"must be at most {limits.max_label_length} characters, without NUL",
                ErrorCode.TOO_LONG,
            )
    return None


def _non_finite(obj: Any) -> bool:
    if isinstance(obj, float):
        return not math.isfinite(obj)
    if isinstance(obj, dict):
        return any(_non_finite(v) for v in obj.values())
    if isinstance(obj, list):
        return any(_non_finite(v) for v in obj)
    return False


def check_json_object(value: Any, path: Path, limits: Limits) -> UserError | None:
    if not isinstance(value, dict):
        return UserError(path, "must be a JSON object", ErrorCode.INVALID)
    if _non_finite(value):
        return UserError(path, "must not contain NaN or infinite numbers", ErrorCode.NOT_FINITE)
    try:
        encoded = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return UserError(path, f"is not valid JSON: {exc}", ErrorCode.INVALID)
    if "\\u0000" in encoded:
        return UserError(path, "must not contain NUL characters", ErrorCode.INVALID)
    if len(encoded.encode()) > limits.max_attributes_bytes:
        return UserError(
            path, f"is larger than {limits.max_attributes_bytes} bytes", ErrorCode.TOO_LARGE
        )
    return None


def check_finite(value: float | None, path: Path) -> UserError | None:
    if value is not None and not math.isfinite(value):
        return UserError(path, "must be a finite number", ErrorCode.NOT_FINITE)
    return None


def check_timestamp(
    value: datetime | None, path: Path, limits: Limits, now: datetime
) -> UserError | None:
    if value is None:
        return None
    if value.tzinfo is None:
        return UserError(path, "must include a time zone offset", ErrorCode.INVALID)
    if value > now + limits.future_tolerance:
        return UserError(path, "lies in the future", ErrorCode.IN_FUTURE)
    return None


def check_embedding(values: Sequence[float], path: Path, limits: Limits) -> UserError | None:
    if not 1 <= len(values) <= limits.max_embedding_dim:
        return UserError(
            path, f"must have 1..{limits.max_embedding_dim} dimensions", ErrorCode.INVALID
        )
    if not all(math.isfinite(v) for v in values):
        return UserError(path, "must contain only finite numbers", ErrorCode.NOT_FINITE)
    if not any(values):
        return UserError(path, "must not be the zero vector", ErrorCode.INVALID)
    return None


def check_batch(size: int, path: Path, limits: Limits) -> UserError | None:
    if size > limits.max_batch_size:
        return UserError(
            path, f"has {size} rows; at most {limits.max_batch_size} per call", ErrorCode.TOO_MANY
        )
    return None


def utcnow() -> datetime:
    return datetime.now(UTC)
