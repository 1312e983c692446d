"""Errors of the API, mapped from the engine's one error model.

- Expected failures of an input carry an ``engines.errors.ErrorCode``: in a mutation's
  ``userErrors { field message code }``, or, for a query argument, as a top-level error with
  ``extensions { code field }``.
- Failures of the request itself (no key, over a limit, a body that is not JSON) carry a
  ``RequestCode``, as top-level errors or HTTP statuses.
- Faults are masked ("Unexpected error.") and logged.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from enum import StrEnum

import strawberry
from graphql import GraphQLError

from engines.errors import ErrorCode, InputError, RecographError

UserErrorCode = strawberry.enum(
    ErrorCode, name="UserErrorCode", description="Why an input was refused."
)


class RequestCode(StrEnum):
    """Codes of refused requests (``extensions.code`` of top-level errors)."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    RATE_LIMITED = "RATE_LIMITED"
    BAD_REQUEST = "BAD_REQUEST"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
    QUERY_TOO_DEEP = "QUERY_TOO_DEEP"
    TOO_MANY_ALIASES = "TOO_MANY_ALIASES"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


@strawberry.type(description="An input the server refused, and which field it was.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input field, e.g. ["input", "items", "3", "id"].'
    )
    message: str
    code: ErrorCode

    @classmethod
    def of(cls, err: InputError) -> UserError:
        return cls(field=list(err.field), message=err.message, code=err.code)


def user_errors(errs: Iterable[InputError]) -> list[UserError]:
    return [UserError.of(e) for e in errs]


def one_row(errs: Iterable[InputError], name: str) -> list[UserError]:
    """Errors of a bulk write of one row (``input.items.0.id``) named like the single
    mutation's input (``input.item.id``)."""
    return user_errors(
        e.at("input", name, drop=3) if e.field[:3] == ("input", f"{name}s", "0") else e
        for e in errs
    )


def refused(message: str, field: str, code: ErrorCode = ErrorCode.INVALID) -> RecographError:
    """A query argument refused as a whole (queries have no payload for userErrors)."""
    return RecographError(message, code, field)


def should_mask(error: GraphQLError) -> bool:
    """Hide internals of unexpected exceptions; keep syntax, validation and input errors."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    if isinstance(original, RecographError):
        extensions: dict[str, object] = {"code": original.code.value}
        if original.field:
            extensions["field"] = ".".join(original.field)
        error.extensions = {**(error.extensions or {}), **extensions}
        return False
    return True


log = logging.getLogger("recograph.errors")
#: longest error message written to the log (an SQL error can quote a huge statement)
LOGGED_MESSAGE = 300
#: faults of one request logged in full
LOGGED_FAULTS = 3


def is_client_error(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, GraphQLError | RecographError)


def log_errors(errors: list[GraphQLError]) -> None:
    """Client errors: one INFO line per request, however many there are (a request with
    10,000 bad ids must not write 10,000 lines). Faults: ERROR with the exception type, a
    shortened message and the traceback's frames (never bound parameters or bodies), for
    the first few; the rest are counted."""
    client = [e for e in errors if is_client_error(e)]
    if client:
        first = client[0]
        path = ".".join(str(p) for p in first.path or ()) or "-"
        more = f" (and {len(client) - 1} more)" if len(client) > 1 else ""
        log.info("client error at %s: %s%s", path, first.message[:LOGGED_MESSAGE], more)
    faults = [e for e in errors if not is_client_error(e)]
    for error in faults[:LOGGED_FAULTS]:
        path = ".".join(str(p) for p in error.path or ()) or "-"
        original = error.original_error
        assert original is not None
        frames = "".join(traceback.format_tb(original.__traceback__))
        log.error(
            "fault at %s: %s: %s\n%s",
            path,
            type(original).__name__,
            str(original)[:LOGGED_MESSAGE],
            frames,
        )
    if len(faults) > LOGGED_FAULTS:
        log.error("%d more faults in the same request", len(faults) - LOGGED_FAULTS)
