"""Business rules of a request: which items may be shown at all."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class AttributePredicate:
    """One condition on ``attributes[key]``; every operator given must hold."""

    key: str
    eq: Any = None
    in_: tuple[Any, ...] | None = None
    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None


@dataclass(frozen=True, slots=True)
class ItemRules:
    """Hidden items are always excluded; everything else here is optional."""

    entity_type: str | None = None
    categories_any: tuple[str, ...] = ()
    categories_exclude: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    attributes: tuple[AttributePredicate, ...] = ()

    @property
    def empty(self) -> bool:
        return not (
            self.entity_type
            or self.categories_any
            or self.categories_exclude
            or self.tags_any
            or self.attributes
        )
