"""Training data: the interaction matrix plus the raw events and item content behind it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from engines.embedders import Embedder


@dataclass(frozen=True, slots=True)
class ItemContent:
    """What content-based algorithms may read of an item."""

    item_id: int
    entity_type: str = "item"
    title: str | None = None
    text: str | None = None
    categories: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainingData:
    """Everything ``Algorithm.fit`` sees.

    ``item_ids``/``user_ids`` are database primary keys; the matrix and event arrays use
    positions into them. ``matrix[u, i]`` is the summed weight of user ``u``'s events on item
    ``i`` (negative for net dislikes). ``content`` is aligned with ``item_ids``.
    """

    item_ids: np.ndarray
    user_ids: np.ndarray
    event_users: np.ndarray
    event_items: np.ndarray
    event_weights: np.ndarray
    event_times: np.ndarray
    content: list[ItemContent]
    now: float
    #: the configured embedder (fitted embedders are fitted on ``content`` once)
    embedder: Embedder | None = None
    _matrix: sp.csr_matrix | None = field(default=None, repr=False)
    _vectors: tuple[Embedder, np.ndarray] | None = field(default=None, repr=False)
    #: the trainer fits several algorithms at once: each cache is computed once
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def from_events(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        times: np.ndarray,
        content: Sequence[ItemContent] = (),
        *,
        now: float | None = None,
        embedder: Embedder | None = None,
    ) -> TrainingData:
        """Index raw ``(user pk, item pk, weight, time)`` events. Every item of ``content``
        is part of the catalogue, including items nobody has touched yet."""
        content = list(content)
        known = np.array([c.item_id for c in content], dtype=np.int64)
        item_ids = np.union1d(known, np.asarray(items, dtype=np.int64))
        by_id = {c.item_id: c for c in content}
        aligned = [by_id.get(int(i)) or ItemContent(int(i)) for i in item_ids]
        user_ids, user_idx = np.unique(np.asarray(users, dtype=np.int64), return_inverse=True)
        item_idx = np.searchsorted(item_ids, np.asarray(items, dtype=np.int64))
        times = np.asarray(times, dtype=np.float64)
        return cls(
            item_ids=item_ids,
            user_ids=user_ids,
            event_users=user_idx.astype(np.int32),
            event_items=item_idx.astype(np.int32),
            event_weights=np.asarray(weights, dtype=np.float32),
            event_times=times,
            content=aligned,
            now=float(now if now is not None else (times.max() if len(times) else 0.0)),
            embedder=embedder,
        )

    def content_vectors(self, fallback: Callable[[], Embedder]) -> tuple[Embedder, np.ndarray]:
        """Each item's content vector and the embedder that made them, computed once per
        training and shared by every algorithm that reads content. A fitted embedder is
        fitted here, on this catalogue; ``fallback`` makes one when none is configured."""
        with self._lock:
            if self._vectors is None:
                embedder = self.embedder.fresh() if self.embedder is not None else fallback()
                if embedder.fitted:
                    embedder.fit(self.content)
                vectors = np.asarray(embedder.embed_items(self.content), np.float32)
                self._vectors = (embedder, vectors)
            return self._vectors

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def matrix(self) -> sp.csr_matrix:
        with self._lock:
            if self._matrix is None:
                m = sp.csr_matrix(
                    (self.event_weights, (self.event_users, self.event_items)),
                    shape=(self.n_users, self.n_items),
                    dtype=np.float32,
                )
                m.sum_duplicates()
                self._matrix = m
            return self._matrix

    def positive_matrix(self) -> sp.csr_matrix:
        """Only the net-positive user-item pairs (what implicit-feedback models learn)."""
        m = self.matrix.copy()
        m.data[m.data < 0] = 0
        m.eliminate_zeros()
        return m
