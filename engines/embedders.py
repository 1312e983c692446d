"""Embedders turn item content (or a search text) into vectors for content-based methods."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from engines.data import ItemContent
from engines.toolkit import normalise_rows  # noqa: F401 (re-exported for embedders)


class Embedder(ABC):
    """Maps items and query texts into one vector space of ``dim`` dimensions."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def __init__(self, **options: Any) -> None:
        self.options = options

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
