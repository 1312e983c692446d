"""Global ids, the ``Node`` interface and Relay connections paged by opaque keyset cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

import strawberry

from engines.errors import ErrorCode
from gql.errors import refused

T = TypeVar("T")
R = TypeVar("R")


def to_global_id(type_name: str, key: str) -> str:
    return base64.urlsafe_b64encode(f"{type_name}:{key}".encode()).decode()


def from_global_id(global_id: str) -> tuple[str, str] | None:
    """``(type, key)`` of a global id, or ``None`` when ``global_id`` is not one."""
    try:
        raw = base64.urlsafe_b64decode(global_id.encode() + b"=" * (-len(global_id) % 4))
        type_name, key = raw.decode().split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if type_name not in NODE_TYPES or not key:
        return None
    return type_name, key


NODE_TYPES = ("Item", "User", "Interaction")


def own_id(id_: str, type_name: str) -> str:
    """Fields that take "your id or the global id": the client's own id either way."""
    decoded = from_global_id(id_)
    return decoded[1] if decoded and decoded[0] == type_name else id_


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def decode_cursor(cursor: str, *parts: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The key of a cursor this connection issued, each part checked by its parser
    (``int``, ``timestamp``...); anything else is a client error naming ``after``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(key, list) or len(key) != len(parts):
            raise ValueError("wrong shape")
        return tuple(parse(value) for parse, value in zip(parts, key, strict=True))
    except (binascii.Error, ValueError, TypeError, UnicodeError, OverflowError, RecursionError):
        raise refused("`after` is not a cursor this connection issued", "after") from None


def key_int(value: Any) -> int:
    """An integer cursor part (a primary key)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise ValueError("not a key")
    return value


def key_time(value: Any) -> datetime:
    """A timestamp cursor part, with its zone."""
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    ts = datetime.fromisoformat(value)
    if ts.tzinfo is None:
        raise ValueError("timestamp without zone")
    return ts


def check_first(first: int, max_page_size: int) -> None:
    if first < 0:
        raise refused("`first` must not be negative", "first")
    if first > max_page_size:
        raise refused(
            f"`first` must be at most {max_page_size}", "first", ErrorCode.PAGE_SIZE_EXCEEDED
        )


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    node: T
    cursor: str


@strawberry.type
class Connection(Generic[T]):
    edges: list[Edge[T]]
    page_info: PageInfo

    @strawberry.field(description="The nodes of `edges`, without cursors.")
    def nodes(self) -> list[T]:
        return [e.node for e in self.edges]


def connection(
    rows: Sequence[R],
    first: int,
    key: Callable[[R], Sequence[Any]],
    wrap: Callable[[R], T],
    has_previous: bool,
) -> Connection[T]:
    """Build a page from ``first + 1`` fetched rows (the extra row only says "there is more")."""
    page = list(rows[:first])
    edges = [Edge(node=wrap(r), cursor=encode_cursor(key(r))) for r in page]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=has_previous,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )
