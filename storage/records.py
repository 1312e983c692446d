"""Plain records the repositories return, so callers never hold ORM or driver objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class ItemRecord:
    pk: int
    external_id: str
    entity_type: str
    title: str | None
    text: str | None
    categories: list[str]
    tags: list[str]
    attributes: dict[str, Any]
    hidden: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UserRecord:
    pk: int
    external_id: str
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class InteractionRecord:
    pk: int
    user_pk: int
    item_pk: int
    type: str
    weight: float
    value: float | None
    occurred_at: datetime
    metadata: dict[str, Any]
    idempotency_key: str | None
    recommendation_id: str | None = None


@dataclass(frozen=True, slots=True)
class InteractionTypeRecord:
    name: str
    weight: float
    value_based: bool
    neutral_value: float
    description: str | None

    def weight_of(self, value: float | None) -> float:
        if self.value_based:
            return self.weight * (
                (value if value is not None else self.neutral_value) - self.neutral_value
            )
        return self.weight


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    algorithm: str
    version: int
    params: dict[str, Any]
    metrics: dict[str, Any]
    created_at: datetime
    blob: bytes = field(repr=False, default=b"")
