"""The algorithm interface every recommender plugin implements (after implicit and LensKit).

Algorithms work on dense indexes into ``TrainingData.item_ids`` (the database's item primary
keys) and return item primary keys, so that any number of them can be blended. All methods
are synchronous, CPU-bound code; the service runs them off the event loop.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.data import TrainingData

Ids = np.ndarray  # int64 item primary keys
Scores = np.ndarray  # float32, same length, higher is better


def training_field(default: Any, **kwargs: Any) -> Any:
    """A config field that only takes effect when a model is trained (so a request cannot
    override it; ``modelTrain`` can)."""
    return Field(default, json_schema_extra={"training": True}, **kwargs)


class AlgorithmConfig(BaseModel):
    """Base of every algorithm's typed configuration; unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    item_id: int
    weight: float
    timestamp: float  # Unix seconds


@dataclass(frozen=True, slots=True)
class Query:
    """Who the recommendations are for: a user's (possibly brand-new) event history, newest
    first. Algorithms fold it in at request time, so a new event counts immediately."""

    user_id: int | None = None
    history: tuple[HistoryEvent, ...] = ()
    now: float = 0.0

    def positive_items(self) -> dict[int, float]:
        """Summed weight per item over the history, positive totals only."""
        return {i: w for i, w in self.summed().items() if w > 0}

    def summed(self) -> dict[int, float]:
        totals: dict[int, float] = {}
        for e in self.history:
            totals[e.item_id] = totals.get(e.item_id, 0.0) + e.weight
        return totals


@dataclass(slots=True)
class Recommended:
    """Ranked item ids with scores, and optionally, per item, the history item that most
    caused it ("because you watched X")."""

    ids: Ids
    scores: Scores
    because: dict[int, int] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> Recommended:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


class Algorithm(ABC):
    """A recommender. Subclasses set ``name``, ``description`` and ``Config``."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    #: False for algorithms that answer without a trained model
    needs_training: ClassVar[bool] = True

    def __init__(self, config: AlgorithmConfig | Mapping[str, Any] | None = None) -> None:
        if config is None:
            config = self.Config()
        elif not isinstance(config, AlgorithmConfig):
            config = self.Config.model_validate(dict(config))
        self.config = config
        self.fitted = False

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return cls.Config.model_json_schema()

    @abstractmethod
    def fit(self, data: TrainingData) -> None:
        """Learn from all interactions; sets ``self.fitted``."""

    @abstractmethod
    def recommend(
        self,
        query: Query,
        limit: int,
        exclude: np.ndarray | None = None,
        candidates: np.ndarray | None = None,
    ) -> Recommended:
        """Top ``limit`` items for ``query``, never an id in ``exclude``, only ids in
        ``candidates`` when given."""

    def similar_items(
        self, item_id: int, limit: int, candidates: np.ndarray | None = None
    ) -> Recommended:
        """Items like ``item_id``; algorithms without a notion of item similarity return
        nothing."""
        return Recommended.empty()

    def partial_fit_user(self, user_id: int, events: list[HistoryEvent]) -> None:  # noqa: B027
        """Online update from new events; optional, default does nothing (request-time
        fold-in already uses the user's latest history)."""

    def item_vectors(self) -> tuple[str, Ids, np.ndarray] | None:
        """``(space, item ids, vectors)`` to store in pgvector after training, if any."""
        return None

    # --- persistence -----------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Arrays that make up the fitted model (override together with ``set_state``)."""
        raise NotImplementedError

    def set_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError

    def save(self) -> bytes:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **self.state())
        return buffer.getvalue()

    def load(self, blob: bytes) -> None:
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            self.set_state({k: arrays[k] for k in arrays.files})
        self.fitted = True


def position(item_ids: np.ndarray, item_id: int) -> int | None:
    """Index of ``item_id`` in the sorted ``item_ids``, or None if the model lacks it."""
    pos = int(np.searchsorted(item_ids, item_id))
    return pos if pos < len(item_ids) and item_ids[pos] == item_id else None


def mask_positions(
    item_ids: np.ndarray, exclude: np.ndarray | None, candidates: np.ndarray | None
) -> np.ndarray:
    """Boolean mask over ``item_ids``: allowed by ``candidates`` and not in ``exclude``."""
    keep = np.ones(len(item_ids), dtype=bool)
    if candidates is not None:
        keep &= np.isin(item_ids, candidates)
    if exclude is not None and len(exclude):
        keep &= ~np.isin(item_ids, exclude)
    return keep


def best(scores: np.ndarray, keep: np.ndarray, limit: int) -> np.ndarray:
    """Positions of the ``limit`` highest finite ``scores`` where ``keep``, best first."""
    scores = np.where(keep & np.isfinite(scores), scores, -np.inf)
    n_valid = int(np.count_nonzero(scores > -np.inf))
    k = min(limit, n_valid)
    if k <= 0:
        return np.empty(0, np.int64)
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    part = part[scores[part] > -np.inf]
    return part[np.argsort(-scores[part], kind="stable")]
