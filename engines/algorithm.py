"""The algorithm interface every recommender plugin implements (after LensKit and implicit).

The split of work: **a plugin scores, the host ranks.** An algorithm learns in ``fit`` and
then, for a query, returns one score per item it knows (``item_ids``, sorted database
primary keys); the host (``engines.serving.ranking``) masks what may not be shown, takes the
top of the list and blends several algorithms. So a plugin never handles candidate sets,
exclusions or top-k selection. Batch scoring (``score_batch``) serves concurrent requests
(the server micro-batches them) and evaluation.

All methods are synchronous CPU-bound code; the host runs them off the event loop.
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from engines.data import TrainingData

Ids = np.ndarray  # int64 item primary keys
Scores = np.ndarray  # float32 over an algorithm's item_ids; higher is better, -inf: never

_NO_IDS = np.empty(0, np.int64)
_NO_WEIGHTS = np.empty(0, np.float32)
_NO_TIMES = np.empty(0, np.float64)
for _a in (_NO_IDS, _NO_WEIGHTS, _NO_TIMES):
    _a.setflags(write=False)


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
class RecordedEvent:
    """An event as it was stored: what online updates and the ``interaction_recorded`` hook
    receive (on every replica)."""

    user: str
    item: str
    user_pk: int
    item_pk: int
    type: str
    weight: float
    value: float | None
    timestamp: float  # Unix seconds


@dataclass(frozen=True, slots=True, eq=False)
class Query:
    """Who the recommendations are for: a user's (possibly brand-new) history as parallel
    arrays, newest first. Algorithms fold it in at request time, so an event counts in the
    very next request."""

    user_id: int | None = None
    items: np.ndarray = field(default_factory=lambda: _NO_IDS)
    weights: np.ndarray = field(default_factory=lambda: _NO_WEIGHTS)
    times: np.ndarray = field(default_factory=lambda: _NO_TIMES)
    now: float = 0.0
    #: derived arrays computed once per request and shared by the algorithms scoring it
    #: (see ``engines.toolkit.history_arrays``)
    memo: dict[Any, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(
        cls,
        user_id: int | None = None,
        history: Sequence[HistoryEvent] = (),
        now: float | None = None,
    ) -> Query:
        n = len(history)
        times = np.fromiter((e.timestamp for e in history), np.float64, n)
        return cls(
            user_id,
            np.fromiter((e.item_id for e in history), np.int64, n),
            np.fromiter((e.weight for e in history), np.float32, n),
            times,
            float(now if now is not None else (times.max() if n else 0.0)),
        )

    def __len__(self) -> int:
        return len(self.items)

    def summed(self) -> dict[int, float]:
        """Summed weight per item over the history."""
        totals: dict[int, float] = {}
        for item, weight in zip(self.items.tolist(), self.weights.tolist(), strict=True):
            totals[item] = totals.get(item, 0.0) + weight
        return totals


@dataclass(slots=True)
class Recommended:
    """Ranked item ids with scores, and per item the history item that most caused it
    ("because you watched X"), where known."""

    ids: Ids
    scores: Scores
    because: dict[int, int] = field(default_factory=dict)
    #: where ``ids`` sit in the algorithm's ``item_ids`` (so explanations can come later)
    positions: np.ndarray | None = None

    @classmethod
    def empty(cls) -> Recommended:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))


class Algorithm(ABC):
    """A recommender. Subclasses set ``name``, ``description`` and ``Config``, learn in
    :meth:`fit` (setting ``item_ids``) and score in :meth:`score`. The optional methods
    below are capabilities the host uses when an algorithm offers them."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[AlgorithmConfig]] = AlgorithmConfig
    #: whether it scores items without needing their events (content): the host routes
    #: items with few events to such algorithms (``engines/serving/cold_routing.py``)
    scores_cold_items: ClassVar[bool] = False

    #: sorted item primary keys; every score array is aligned with it
    item_ids: np.ndarray

    def __init__(self, config: AlgorithmConfig | Mapping[str, Any] | None = None) -> None:
        if config is None:
            config = self.Config()
        elif not isinstance(config, AlgorithmConfig):
            config = self.Config.model_validate(dict(config))
        self.config = config
        self.fitted = False
        self.item_ids = np.empty(0, np.int64)

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        return cls.Config.model_json_schema()

    # --- learning --------------------------------------------------------------------
    @abstractmethod
    def fit(self, data: TrainingData) -> None:
        """Learn from all interactions; sets ``item_ids`` and ``self.fitted``."""

    def untrained_copy(self) -> Self:
        """A new, unfitted model with the settings this one was trained with, its own
        search of settings (``autotune``) turned off. An algorithm may hand it what lets
        a refit on nearly the same data start ahead (``collaborative``: its vectors)."""
        config = self.config.model_dump()
        if "autotune" in config:
            config["autotune"] = False
        return type(self)(config)

    def refitted(self, data: TrainingData) -> Algorithm:
        """``untrained_copy`` fitted on ``data``: the host refits members on a validation
        split of the same events to learn blend weights."""
        fresh = self.untrained_copy()
        fresh.fit(data)
        return fresh

    def partial_fit(self, events: Sequence[RecordedEvent]) -> None:  # noqa: B027
        """Online update from events just recorded (optional; request-time fold-in already
        uses each user's latest history)."""

    # --- scoring ---------------------------------------------------------------------
    @abstractmethod
    def score(self, query: Query) -> Scores | None:
        """One float32 score per item of ``item_ids`` for ``query`` (-inf: never
        recommend), or None when the algorithm has no answer for this query."""

    def score_batch(self, queries: Sequence[Query]) -> np.ndarray:
        """Scores of many queries at once: ``(len(queries), len(item_ids))``, rows of
        -inf where there is no answer, each row what ``score`` gives that query. The server
        calls it for concurrent requests and evaluation for many users: override it when
        batching is faster."""
        out = np.full((len(queries), len(self.item_ids)), -np.inf, np.float32)
        for row, query in enumerate(queries):
            scores = self.score(query)
            if scores is not None:
                out[row] = scores
        return out

    def similar(self, position: int) -> Scores | None:
        """Scores of every item by likeness to the item at ``position`` of ``item_ids``;
        None for algorithms without a notion of item similarity."""
        return None

    def similar_batch(self, positions: Sequence[int]) -> list[Scores | None]:
        """``similar`` for several items at once (concurrent ``similarItems`` requests):
        override it when one pass over the model for all of them is faster."""
        return [self.similar(p) for p in positions]

    def explain(self, query: Query, positions: np.ndarray) -> np.ndarray | None:
        """For recommended ``positions``, the primary key of the history item that most
        caused each (-1 where none did); None when the algorithm cannot say."""
        return None

    def report(self) -> dict[str, Any]:
        """What training found worth recording beside the fit time (settings chosen,
        validation metrics); kept in the model's metrics."""
        return {}

    def popularity(self) -> Scores | None:
        """How popular each item is, if the algorithm knows: the host fills pages with the
        most popular eligible items when the algorithms propose too few."""
        return None

    def item_counts(self) -> Scores | None:
        """Events per item (aligned with ``item_ids``) in the training data, if the
        algorithm keeps them: which items are cold."""
        return None

    def text_vector(self, text: str) -> tuple[str, np.ndarray] | None:
        """For search: ``(space, vector)`` of a query text, when the algorithm embeds
        content with an embedder fitted on this tenant's catalogue."""
        return None

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
        # uncompressed: float arrays barely compress, and zlib cost seconds per 100 MB
        np.savez(buffer, allow_pickle=False, **self.state())
        return buffer.getvalue()

    def load(self, blob: bytes) -> None:
        with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
            self.set_state({k: arrays[k] for k in arrays.files})
        self.fitted = True
