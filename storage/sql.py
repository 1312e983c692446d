"""Small SQL building blocks shared by the repositories."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

#: least word similarity (0..1) of a typed text to a part of a title for a trigram match
#: (search; set per session, see ``hot_reads.py`` and ``repositories/search.py``)
TRIGRAM_THRESHOLD = 0.5


def any_of(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column = ANY(:values)``: one array parameter however many values there are (an
    ``IN`` list takes one parameter per value, and PostgreSQL's protocol stops at 32,767)."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))


@contextlib.asynccontextmanager
async def in_transaction(
    engine: AsyncEngine, conn: AsyncConnection | None = None
) -> AsyncIterator[AsyncConnection]:
    """``conn`` (a transaction the caller owns), or a new transaction of its own."""
    if conn is not None:
        yield conn
        return
    async with engine.begin() as own:
        yield own
