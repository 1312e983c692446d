"""Fast conversion of flat input types, the rows of bulk mutations.

Strawberry converts an input value field by field, resolving each field's type and GraphQL
name again for every object; for a 10,000-event ``interactionsRecord`` that was 45% of the
server's CPU. An input type whose fields are all scalars (or lists of scalars) needs none
of it: graphql-core has already coerced and validated every value, so the object can be
built straight from its GraphQL field names. :func:`flat_input` installs such a builder
through Strawberry's ``from_input`` hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any, NewType, TypeVar

from strawberry.schema.config import StrawberryConfig
from strawberry.schema.types.scalar import DEFAULT_SCALAR_REGISTRY
from strawberry.types.arguments import InputContext
from strawberry.types.base import StrawberryList, StrawberryOptional
from strawberry.types.scalar import ScalarDefinition, ScalarWrapper

T = TypeVar("T")


def _is_leaf(type_: Any) -> bool:
    if isinstance(type_, StrawberryOptional | StrawberryList):
        return _is_leaf(type_.of_type)
    if isinstance(type_, ScalarWrapper | ScalarDefinition | NewType):  # NewType: scalar_map's
        return True
    try:
        if type_ in DEFAULT_SCALAR_REGISTRY:
            return True
    except TypeError:  # unhashable: not a scalar
        return False
    return getattr(type_, "_scalar_definition", None) is not None


def flat_input(cls: type[T]) -> type[T]:
    """Build ``cls`` (a Strawberry input of scalar fields) from its GraphQL value directly.
    Fields the client left out keep their Python defaults, as with Strawberry's own
    conversion; lists are copied (graphql-core shares default values between requests)."""
    definition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    names = StrawberryConfig().name_converter
    fields: list[tuple[str, str, bool]] = []
    for field in definition.fields:
        resolved = field.resolve_type(type_definition=definition)
        if not _is_leaf(resolved):
            raise TypeError(f"{cls.__name__}.{field.python_name} is not a scalar field")
        is_list = isinstance(resolved, StrawberryList) or (
            isinstance(resolved, StrawberryOptional)
            and isinstance(resolved.of_type, StrawberryList)
        )
        fields.append((names.from_field(field), field.python_name, is_list))
    # as Strawberry does: a field without a default that the client left out is None
    implicit = {
        f.python_name: None
        for f in definition.fields
        if f.default_value is MISSING and f.default_factory is MISSING
    }

    def build(target: type, value: Mapping[str, Any], context: InputContext) -> Any:
        kwargs: dict[str, Any] = dict(implicit)
        for graphql_name, python_name, is_list in fields:
            if graphql_name in value:
                v = value[graphql_name]
                kwargs[python_name] = list(v) if is_list and v is not None else v
        return target(**kwargs)

    definition.from_input = build
    return cls
