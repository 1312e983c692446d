"""Micro-batching: concurrent requests share one ``score_batch`` call per model.

A single user's scores are a vector-matrix product that streams the whole model from
memory; sixteen users' scores are one matrix-matrix product that streams it once. Requests
that reach scoring in the same turn of the event loop are collected, per model, and scored
together; each gets its own row back. Nothing waits for a batch to fill: a lone request is
scored on the next turn of the loop, as it would have been alone. While one batch runs in a
worker thread, the requests that arrive meanwhile wait for it to finish and then go together
(batches grow with the load, with no timer to tune).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np

from engines.algorithm import Algorithm, Query

#: what one request waits for: its scores, or None when the algorithm has no answer
Pending = asyncio.Future[np.ndarray | None]
#: what is scored: a user's history, or the position of an item to find items like
Request = Query | int


class ScoreBatcher:
    def __init__(self, inline_items: int = 60_000, max_batch: int = 64) -> None:
        #: a batch over at most this many item scores (rows × items) runs on the loop; a
        #: bigger one in a worker thread, so the event loop never waits on the math
        self.inline_items = inline_items
        self.max_batch = max_batch
        self._pending: dict[tuple[int, bool], tuple[Algorithm, list[tuple[Request, Pending]]]] = {}
        self._scheduled = False
        self._running = False
        #: instrumentation (batch sizes); a no-op unless the host sets it
        self.on_batch: Callable[[str, int], None] = lambda name, size: None

    def score(self, model: Algorithm, query: Query) -> Pending:
        """The model's scores for ``query`` (``score``/``score_batch``)."""
        return self._add(model, query)

    def similar(self, model: Algorithm, position: int) -> Pending:
        """The model's likeness of every item to the one at ``position``
        (``similar``/``similar_batch``): one pass over a large model for many requests."""
        return self._add(model, position)

    def _add(self, model: Algorithm, request: Request) -> Pending:
        loop = asyncio.get_running_loop()
        future: Pending = loop.create_future()
        entry = self._pending.setdefault((id(model), isinstance(request, int)), (model, []))
        entry[1].append((request, future))
        if not self._scheduled and not self._running:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        work: list[tuple[Algorithm, list[tuple[Request, Pending]]]] = []
        for model, waiting in self._pending.values():
            for start in range(0, len(waiting), self.max_batch):
                work.append((model, waiting[start : start + self.max_batch]))
        self._pending.clear()
        size = sum(len(m.item_ids) * len(w) for m, w in work)
        if size <= self.inline_items:
            self._deliver(work, _score_all(work))
            return
        loop = asyncio.get_running_loop()
        self._running = True
        task = loop.run_in_executor(None, _score_all, work)
        task.add_done_callback(lambda done: self._finished(work, done))

    def _finished(
        self,
        work: list[tuple[Algorithm, list[tuple[Request, Pending]]]],
        done: asyncio.Future[list[list[np.ndarray | None] | BaseException]],
    ) -> None:
        self._running = False
        try:
            if done.cancelled():  # shutting down: the requests are cancelled too
                for _, waiting in work:
                    for _, future in waiting:
                        future.cancel()
                return
            failed = done.exception()
            results: list[list[np.ndarray | None] | BaseException] = (
                done.result() if failed is None else [failed] * len(work)
            )
            self._deliver(work, results)
        finally:  # whatever happened, the next batch is not left waiting
            if self._pending and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)

    def _deliver(
        self,
        work: list[tuple[Algorithm, list[tuple[Request, Pending]]]],
        results: list[list[np.ndarray | None] | BaseException],
    ) -> None:
        for (model, waiting), result in zip(work, results, strict=True):
            self.on_batch(model.name, len(waiting))
            for n, (_, future) in enumerate(waiting):
                if future.done():  # the request went away meanwhile
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result[n])


def _score_all(
    work: list[tuple[Algorithm, list[tuple[Request, Pending]]]],
) -> list[list[np.ndarray | None] | BaseException]:
    out: list[list[np.ndarray | None] | BaseException] = []
    for model, waiting in work:
        try:
            out.append(_score(model, [q for q, _ in waiting]))
        except Exception as exc:  # each request reports its own failure
            out.append(exc)
    return out


def _score(model: Algorithm, requests: list[Request]) -> list[np.ndarray | None]:
    positions = [r for r in requests if isinstance(r, int)]
    if positions:  # a batch holds one kind of request
        if len(positions) == 1:
            return [model.similar(positions[0])]
        return list(model.similar_batch(positions))
    queries = [r for r in requests if not isinstance(r, int)]
    if len(queries) == 1:
        return [model.score(queries[0])]
    rows = model.score_batch(queries)
    return [row if np.isfinite(row).any() else None for row in rows]
