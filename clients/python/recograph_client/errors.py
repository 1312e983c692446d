"""What the client raises. Every exception is a :class:`RecographError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .generated.fragments import UserErrorFields


class RecographError(Exception):
    """Base class of everything this client raises."""


class RecographConnectionError(RecographError):
    """The server could not be reached, or did not answer in time (after retries)."""


class RecographHTTPError(RecographError):
    """The server answered with an HTTP error status (after retries, for 429 and 5xx)."""

    def __init__(self, status_code: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.body = body


class AuthenticationError(RecographHTTPError):
    """HTTP 401: a missing, unknown or revoked API key, or a bad user token."""


class RateLimitError(RecographHTTPError):
    """HTTP 429 on every try: the key's or tenant's rate limit. ``retry_after`` is the
    server's ``Retry-After`` in seconds (``None`` if it sent none)."""

    def __init__(
        self, status_code: int, message: str, body: Any = None, retry_after: float | None = None
    ) -> None:
        super().__init__(status_code, message, body)
        self.retry_after = retry_after


class RecographGraphQLError(RecographError):
    """Top-level GraphQL ``errors``: a malformed or refused request (``code`` is the first
    error's ``extensions.code``, e.g. ``UNKNOWN_ALGORITHM``, ``FORBIDDEN``,
    ``QUERY_TOO_COSTLY``). ``errors`` holds every error as the server sent it, ``data`` any
    partial data."""

    def __init__(self, errors: Sequence[dict[str, Any]], data: Any = None) -> None:
        first = errors[0] if errors else {}
        self.errors = list(errors)
        self.data = data
        self.message: str = str(first.get("message", "GraphQL error"))
        extensions = first.get("extensions") or {}
        self.code: str | None = extensions.get("code") if isinstance(extensions, dict) else None
        self.field: Any = extensions.get("field") if isinstance(extensions, dict) else None
        super().__init__(f"{self.code}: {self.message}" if self.code else self.message)


class RecographUserError(RecographError):
    """A mutation refused some of its input (its ``userErrors``). ``errors`` lists them, each
    with ``field`` (the input path, e.g. ``["input", "items", "1203", "id"]``: indexes count
    from the start of the list you passed, across batches), ``message`` and ``code``.
    ``result`` is what the call did return: in bulk calls the valid rows were written and
    ``result`` counts them."""

    def __init__(self, errors: Sequence[UserErrorFields], result: Any = None) -> None:
        self.errors = list(errors)
        self.result = result
        shown = "; ".join(
            f"{'.'.join(e.field or ())}: {e.message} ({e.code.value})" for e in self.errors[:3]
        )
        more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        super().__init__(shown + more)

    @property
    def fields(self) -> list[list[str] | None]:
        """The input path of every error."""
        return [e.field for e in self.errors]
