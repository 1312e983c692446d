"""Filter inputs: which items a list may hold. One translation into the engine's item rules
serves recommendations, similar items, trending, search and the catalogue listing."""

from __future__ import annotations

import math
from collections.abc import Sequence

import strawberry
from strawberry.scalars import JSON

from engines.errors import ErrorCode
from engines.serving.rules import AttributePredicate, ItemRules
from gql.errors import refused

#: most attribute conditions, values of one ``in`` and labels of one filter list
MAX_FILTER_TERMS = 1000


@strawberry.input(description="A condition on one attribute; every operator given must hold.")
class AttributeFilterInput:
    key: str
    eq: JSON | None = None
    in_: list[JSON] | None = strawberry.field(default=None, name="in")
    lt: float | None = None
    lte: float | None = None
    gt: float | None = None
    gte: float | None = None


@strawberry.input(description="Which items may be recommended. Hidden items never are.")
class RecommendationFilterInput:
    entity_type: str | None = None
    categories: list[str] | None = strawberry.field(
        default=None, description="Only items in at least one of these categories."
    )
    exclude_categories: list[str] | None = None
    tags: list[str] | None = strawberry.field(
        default=None, description="Only items with at least one of these tags."
    )
    attributes: list[AttributeFilterInput] | None = None
    exclude_ids: list[str] | None = strawberry.field(
        default=None, description="Your ids of items never to return."
    )


@strawberry.input(description="Which items to list; all conditions must hold.")
class ItemFilterInput:
    entity_type: str | None = None
    categories: list[str] | None = strawberry.field(
        default=None, description="Items in at least one of these categories."
    )
    exclude_categories: list[str] | None = None
    tags: list[str] | None = strawberry.field(
        default=None, description="Items with at least one of these tags."
    )
    attributes: list[AttributeFilterInput] | None = None
    hidden: bool | None = strawberry.field(
        default=None, description="Only hidden (true) or only visible (false) items."
    )
    ids: list[str] | None = strawberry.field(default=None, description="Your item ids.")


def _predicates(attributes: Sequence[AttributeFilterInput]) -> tuple[AttributePredicate, ...]:
    preds, total = [], 0
    for n, a in enumerate(attributes):
        where = f"filter.attributes.{n}"
        for bound in (a.lt, a.lte, a.gt, a.gte):
            if bound is not None and not math.isfinite(bound):
                raise refused("attribute bounds must be finite", where, ErrorCode.NOT_FINITE)
        total += len(a.in_ or ())
        if total > MAX_FILTER_TERMS:
            raise refused(
                f"`in` takes at most {MAX_FILTER_TERMS} values across all attributes",
                where,
                ErrorCode.TOO_MANY,
            )
        try:
            preds.append(AttributePredicate.of(a.key, a.eq, a.in_, a.lt, a.lte, a.gt, a.gte))
        except (TypeError, ValueError):
            raise refused("`eq`/`in` values must be finite JSON", where) from None
    return tuple(preds)


def rules_of(
    f: RecommendationFilterInput | ItemFilterInput | None, max_ids: int = 20_000
) -> ItemRules:
    """The item rules of a filter input (recommendations never show hidden items)."""
    if f is None:
        return ItemRules()
    attributes = f.attributes or ()
    ids = f.ids if isinstance(f, ItemFilterInput) else f.exclude_ids
    for name, values, limit in (
        ("attributes", attributes, MAX_FILTER_TERMS),
        ("categories", f.categories or (), MAX_FILTER_TERMS),
        ("excludeCategories", f.exclude_categories or (), MAX_FILTER_TERMS),
        ("tags", f.tags or (), MAX_FILTER_TERMS),
        ("ids" if isinstance(f, ItemFilterInput) else "excludeIds", ids or (), max_ids),
    ):
        if len(values) > limit:
            raise refused(f"at most {limit} entries", f"filter.{name}", ErrorCode.TOO_MANY)
    hidden, external_ids = (
        (f.hidden, tuple(f.ids or ()))
        if isinstance(f, ItemFilterInput)
        else (
            False,
            (),
        )
    )
    return ItemRules(
        entity_type=f.entity_type,
        categories_any=tuple(f.categories or ()),
        categories_exclude=tuple(f.exclude_categories or ()),
        tags_any=tuple(f.tags or ()),
        attributes=_predicates(attributes),
        hidden=hidden,
        external_ids=external_ids,
    )
