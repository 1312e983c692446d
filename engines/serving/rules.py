"""Business rules of a request: which items may be shown at all.

Rules are hashable (they key the candidate cache), so JSON values given for ``eq``/``in``
are kept as canonical JSON text: ``{"a": 1, "b": [2]}`` and ``{"b": [2], "a": 1}`` are the
same rule and the same cache entry.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True, slots=True)
class AttributePredicate:
    """One condition on ``attributes[key]``; every operator given must hold. ``eq_json`` and
    ``in_json`` hold canonical JSON text (see :meth:`of`)."""

    key: str
    eq_json: str | None = None
    in_json: tuple[str, ...] | None = None
    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None

    @classmethod
    def of(
        cls,
        key: str,
        eq: Any = None,
        in_: Any = None,
        lt: float | None = None,
        lte: float | None = None,
        gt: float | None = None,
        gte: float | None = None,
    ) -> AttributePredicate:
        return cls(
            key,
            canonical_json(eq) if eq is not None else None,
            tuple(canonical_json(v) for v in in_) if in_ is not None else None,
            lt,
            lte,
            gt,
            gte,
        )

    @property
    def eq(self) -> Any:
        return json.loads(self.eq_json) if self.eq_json is not None else None

    @property
    def in_(self) -> tuple[Any, ...] | None:
        return tuple(json.loads(v) for v in self.in_json) if self.in_json is not None else None


@dataclass(frozen=True, slots=True)
class ItemRules:
    """Which items qualify: for recommendations (hidden items never do) and for listing
    the catalogue (where ``hidden`` may be None, any, or True, only hidden ones)."""

    entity_type: str | None = None
    categories_any: tuple[str, ...] = ()
    categories_exclude: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    attributes: tuple[AttributePredicate, ...] = ()
    hidden: bool | None = False
    external_ids: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.entity_type
            or self.categories_any
            or self.categories_exclude
            or self.tags_any
            or self.attributes
            or self.external_ids
        )
