"""Expected failures of user input, carried up to the API as typed ``userErrors``."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID = "INVALID"
    BLANK = "BLANK"
    TOO_LONG = "TOO_LONG"
    TOO_LARGE = "TOO_LARGE"
    TOO_MANY = "TOO_MANY"
    TOO_DEEP = "TOO_DEEP"
    NOT_FOUND = "NOT_FOUND"
    NOT_FINITE = "NOT_FINITE"
    IN_FUTURE = "IN_FUTURE"
    UNKNOWN_TYPE = "UNKNOWN_TYPE"
    DIMENSION_MISMATCH = "DIMENSION_MISMATCH"
    DUPLICATE = "DUPLICATE"
    BUSY = "BUSY"


@dataclass(frozen=True, slots=True)
class UserError:
    field: tuple[str, ...]
    message: str
    code: ErrorCode = ErrorCode.INVALID


@dataclass(slots=True)
class UserErrors(Exception):
    """Raised when a whole request is invalid (as opposed to single rows of a batch)."""

    errors: list[UserError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(f"{'.'.join(e.field)}: {e.message}" for e in self.errors)
