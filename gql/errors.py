"""Errors of the API: ``userErrors`` for expected failures, masked top-level errors for faults."""

from __future__ import annotations

import logging
import traceback
from enum import Enum

import strawberry
from graphql import GraphQLError

from storage.errors import ErrorCode
from storage.errors import UserError as StoredUserError

UserErrorCode = strawberry.enum(
    Enum("UserErrorCode", {c.name: c.value for c in ErrorCode}),  # type: ignore[misc]
    description="Why an input was refused.",
)


@strawberry.type(description="An input the server refused, and which field it was.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input field, e.g. ["input", "items", "3", "id"].'
    )
    message: str
    code: UserErrorCode  # type: ignore[valid-type]

    @classmethod
    def of(cls, err: StoredUserError) -> UserError:
        return cls(field=list(err.field), message=err.message, code=UserErrorCode[err.code.name])  # type: ignore[misc]


def user_errors(errs: list[StoredUserError]) -> list[UserError]:
    return [UserError.of(e) for e in errs]


class ClientError(Exception):
    """A bad argument of a query (queries have no payload): shown to the client as is."""

    def __init__(self, message: str, field: str | None = None, code: str = "BAD_USER_INPUT"):
        super().__init__(message)
        self.extensions = {"code": code} | ({"field": field} if field else {})


def should_mask(error: GraphQLError) -> bool:
    """Hide internals of unexpected exceptions; keep syntax, validation and client errors."""
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return False
    if isinstance(original, ClientError):
        error.extensions = {**(error.extensions or {}), **original.extensions}
        return False
    return True


log = logging.getLogger("recograph.errors")
#: longest error message written to the log (an SQL error can quote a huge statement)
LOGGED_MESSAGE = 300


def is_client_error(error: GraphQLError) -> bool:
    original = error.original_error
    return original is None or isinstance(original, GraphQLError | ClientError)


def log_errors(errors: list[GraphQLError]) -> None:
    """Client errors: one INFO line each. Faults: ERROR with the exception type, a
    shortened message and the traceback's frames (never bound parameters or bodies)."""
    for error in errors:
        path = ".".join(str(p) for p in error.path or ()) or "-"
        if is_client_error(error):
            log.info("client error at %s: %s", path, error.message[:LOGGED_MESSAGE])
            continue
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
