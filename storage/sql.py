"""Small SQL building blocks shared by the repositories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY


def any_of(column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column = ANY(:values)``: one array parameter however many values there are (an
    ``IN`` list takes one parameter per value, and PostgreSQL's protocol stops at 32,767)."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
