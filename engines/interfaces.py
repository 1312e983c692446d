"""The small storage interface the engines need; ``storage.engine_storage`` implements it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

import numpy as np

from engines.algorithm import Query, RecordedEvent
from engines.data import ItemContent
from engines.serving.rules import ItemRules
from engines.serving.search import Retrieved


class Artifact(Protocol):
    """A stored model version (read-only attributes, as a frozen record provides)."""

    @property
    def algorithm(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def metrics(self) -> dict[str, Any]: ...
    @property
    def created_at(self) -> datetime | None: ...
    @property
    def blob(self) -> bytes: ...


class TrainingJob(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def tenant(self) -> str: ...
    @property
    def algorithms(self) -> list[str] | None: ...
    @property
    def configs(self) -> dict[str, Any]: ...
    @property
    def status(self) -> str: ...
    @property
    def result(self) -> list[Any] | None: ...
    @property
    def error_code(self) -> str | None: ...
    @property
    def error(self) -> str | None: ...


class AnswerCache(Protocol):
    """Finished recommendations of users, kept while nothing they depend on changed: the
    store stamps each with the user's event version and the catalogue version."""

    @property
    def enabled(self) -> bool: ...

    async def lookup(
        self, tenant: str, user: str, key: str
    ) -> tuple[bytes | None, tuple[int, int]]: ...

    async def store(self, tenant: str, key: str, stamp: tuple[int, int], value: bytes) -> None: ...


class EngineStorage(Protocol):
    async def training_events(
        self, tenant: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """All events as arrays: user pks, item pks, weights, Unix times."""

    async def item_content(self, tenant: str) -> list[ItemContent]: ...

    async def change_marker(self, tenant: str) -> tuple[int, ...]:
        """Something that changes whenever events or items do; ``(0, ...)`` = no events."""

    async def user_history(self, tenant: str, user_id: str, limit: int) -> Query:
        """The user's pk and newest ``limit`` events (an empty query if unknown)."""

    async def impressions(self, tenant: str, user_id: str) -> dict[int, int]:
        """How many times each item (pk) was served to the user lately (rotation)."""
        ...

    async def record_impressions(self, tenant: str, user_id: str, pks: list[int]) -> None:
        """The items were served to the user once more."""
        ...

    async def item_pks(self, tenant: str, external_ids: list[str]) -> dict[str, int]: ...

    async def eligible_items(self, tenant: str, rules: ItemRules) -> np.ndarray:
        """Pks of the items that are not hidden and satisfy ``rules``."""

    async def item_categories(self, tenant: str, pks: list[int]) -> dict[int, list[str]]:
        """The categories of these items (from the catalogue snapshot where there is one)."""

    async def events_after(self, tenant: str, event_id: int, limit: int) -> list[RecordedEvent]:
        """Up to ``limit`` events stored after event ``event_id``, oldest first (what a
        model loaded from an artifact missed since its training)."""
        ...

    async def recent_popularity(self, tenant: str, window: int) -> tuple[np.ndarray, np.ndarray]:
        """(item pks, sorted; counts) of the positive events among the tenant's ``window``
        newest (or the online trending counters, when they know enough items)."""

    async def items_together(
        self, tenant: str, item: int, limit: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(item pks, times used together with ``item`` in one session), most first."""
        ...

    async def search_items(
        self,
        tenant: str,
        text: str,
        vector: tuple[str, np.ndarray] | None,
        pool: int,
        rules: ItemRules,
        retrievers: tuple[str, ...],
    ) -> dict[str, list[Retrieved]]:
        """Each retriever's (``fulltext``, ``trigram``, ``vector`` in ``vector[0]``'s space)
        best ``pool`` items meeting ``rules``, best first."""

    async def store_vectors(
        self, tenant: str, space: str, item_ids: np.ndarray, vectors: np.ndarray
    ) -> None: ...

    async def save_artifact(
        self,
        tenant: str,
        algorithm: str,
        blob: bytes,
        params: dict[str, Any],
        metrics: dict[str, Any],
    ) -> int: ...

    async def latest_artifact(
        self, tenant: str, algorithm: str, *, with_blob: bool = True
    ) -> Artifact | None: ...

    async def enqueue_training(
        self, tenant: str, algorithms: list[str] | None, configs: dict[str, Any]
    ) -> int:
        """Record a training request; its job id."""

    async def training_job(self, tenant: str, job_id: int) -> TrainingJob | None: ...

    async def claim_training(self) -> TrainingJob | None:
        """The oldest pending training request of any tenant, now marked running."""

    async def finish_training(
        self,
        job_id: int,
        result: list[Any] | None,
        error_code: str | None = None,
        error: str | None = None,
    ) -> None: ...

    def tenant_scope(self, tenant: str) -> AbstractContextManager[None]:
        """Work inside runs with only ``tenant``'s rows visible (row-level security)."""

    async def try_lock(self, key: str) -> object | None:
        """A held cluster-wide lock (release with ``unlock``), or None if taken."""

    async def unlock(self, handle: object) -> None: ...
