"""SQL for the item rules of a request, shared by candidate lookups and vector search."""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, and_, cast, func, literal, not_, or_, true
from sqlalchemy.dialects.postgresql import JSONPATH

from engines.serving.rules import AttributePredicate, ItemRules
from storage.sql import any_of
from storage.tables import ITEMS

T = ITEMS


def _path(key: str) -> str:
    """A jsonpath naming one top-level key, quoted so any key is safe."""
    return "$." + json.dumps(key)


def attribute_condition(p: AttributePredicate) -> ColumnElement[bool]:
    parts: list[ColumnElement[bool]] = []
    if p.eq is not None:
        parts.append(T.c.attributes.contains({p.key: p.eq}))
    if p.in_ is not None:
        parts.append(
            or_(*(T.c.attributes.contains({p.key: v}) for v in p.in_)) if p.in_ else literal(False)
        )
    for op, value in (("<", p.lt), ("<=", p.lte), (">", p.gt), (">=", p.gte)):
        if value is not None:
            parts.append(_jsonpath_compare(p.key, op, value))
    return and_(*parts) if parts else true()


def _jsonpath_compare(key: str, op: str, value: float) -> ColumnElement[bool]:
    path = f"{_path(key)} ? (@ {op} $v)"
    return func.jsonb_path_exists(
        T.c.attributes, cast(path, JSONPATH), func.jsonb_build_object("v", value)
    )


def item_conditions(tenant: str, rules: ItemRules) -> list[ColumnElement[bool]]:
    """The one translation of item rules into SQL (candidates, search, catalogue pages)."""
    conds: list[ColumnElement[bool]] = [T.c.tenant_id == tenant]
    if rules.hidden is not None:
        conds.append(T.c.hidden if rules.hidden else not_(T.c.hidden))
    if rules.external_ids:
        conds.append(any_of(T.c.external_id, rules.external_ids))
    if rules.entity_type is not None:
        conds.append(T.c.entity_type == rules.entity_type)
    if rules.categories_any:
        conds.append(T.c.categories.overlap(list(rules.categories_any)))
    if rules.categories_exclude:
        conds.append(not_(T.c.categories.overlap(list(rules.categories_exclude))))
    if rules.tags_any:
        conds.append(T.c.tags.overlap(list(rules.tags_any)))
    conds += [attribute_condition(p) for p in rules.attributes]
    return conds
