"""The one error model: every expected failure a client can cause has an ``ErrorCode``.

``InputError`` describes one refused input (a row of a bulk call, an argument) and names its
field; the API returns it in ``userErrors`` or, for queries, as a top-level error with the
same code. ``RecographError`` is raised for a whole request the engine or storage refuses.
Faults (bugs, outages) are neither: they surface as masked internal errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    # the value of an input
    INVALID = "INVALID"
    BLANK = "BLANK"
    TOO_LONG = "TOO_LONG"
    TOO_LARGE = "TOO_LARGE"
    TOO_MANY = "TOO_MANY"
    TOO_DEEP = "TOO_DEEP"
    NOT_FINITE = "NOT_FINITE"
    IN_FUTURE = "IN_FUTURE"
    DIMENSION_MISMATCH = "DIMENSION_MISMATCH"
    PAGE_SIZE_EXCEEDED = "PAGE_SIZE_EXCEEDED"
    # what an input refers to
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    UNKNOWN_ALGORITHM = "UNKNOWN_ALGORITHM"
    # algorithms and models
    INVALID_CONFIG = "INVALID_CONFIG"
    INVALID_WEIGHT = "INVALID_WEIGHT"
    NOT_TRAINED = "NOT_TRAINED"
    BUSY = "BUSY"
    #: the object's state forbids it now (e.g. an experiment already running)
    CONFLICT = "CONFLICT"
    # who may do what
    FORBIDDEN = "FORBIDDEN"


Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InputError:
    """One refused input: where it is (``("input", "items", "3", "id")``), why, and a code."""

    field: Path
    message: str
    code: ErrorCode = ErrorCode.INVALID

    def at(self, *prefix: str, drop: int = 0) -> InputError:
        """The same error with its path's first ``drop`` parts replaced by ``prefix``."""
        return InputError((*prefix, *self.field[drop:]), self.message, self.code)


class RecographError(Exception):
    """A request refused as a whole, with a code and the offending field."""

    def __init__(self, message: str, code: ErrorCode, field: str | Sequence[str] | None = None):
        super().__init__(message)
        self.code = code
        if field is None:
            self.field: Path = ()
        else:
            self.field = (field,) if isinstance(field, str) else tuple(field)

    @property
    def message(self) -> str:
        return str(self)
