"""Embedders turn item content (or a search text) into vectors for content-based methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from engines.data import ItemContent
from engines.toolkit import normalise_rows  # noqa: F401 (re-exported for embedders)


class Embedder(ABC):
    """Maps items and query texts into one vector space of ``dim`` dimensions.

    A *fitted* embedder learns from each tenant's own catalogue when models are trained
    (``fit``), and its learned state is saved with the content model (``state`` /
    ``set_state``); a fixed one (a hosted or local sentence model, feature hashing) maps
    text the same way for everyone."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    fitted: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def fresh(self) -> Embedder:
        """A new, unfitted embedder with the same options (one per tenant and training)."""
        return type(self)(**self.options)

    def fit(self, items: Sequence[ItemContent]) -> None:  # noqa: B027
        """Learn from a tenant's catalogue (fitted embedders only)."""

    def state(self) -> dict[str, np.ndarray]:
        """What ``fit`` learned, as arrays (fitted embedders only)."""
        return {}

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:  # noqa: B027
        """Restore what ``fit`` learned."""

    @property
    @abstractmethod
    def dim(self) -> int: ...

    @abstractmethod
    def embed_items(self, items: Sequence[ItemContent]) -> np.ndarray:
        """``(len(items), dim)`` float32, rows L2-normalised (zero rows for empty items)."""

    @abstractmethod
    def embed_text(self, text: str) -> np.ndarray:
        """A ``(dim,)`` float32 vector for a search query, L2-normalised."""

    @property
    def space(self) -> str:
        """The pgvector space this embedder's vectors live in."""
        return self.space_name()

    @classmethod
    def space_name(cls) -> str:
        return f"content_{cls.name}"


def item_text(item: ItemContent) -> str:
    """One text for embedders that read prose: title, categories, tags, then text."""
    parts = [item.title or ""]
    if item.categories:
        parts.append("Categories: " + ", ".join(item.categories))
    if item.tags:
        parts.append("Tags: " + ", ".join(item.tags))
    if item.text:
        parts.append(item.text)
    return ". ".join(p for p in parts if p)
