"""Retries with exponential backoff and jitter on HTTP 429 and 5xx, honouring Retry-After,
as httpx transports (one sync, one async) wrapped around httpx's own."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried.

    A request answered with one of ``statuses`` (429 and 5xx by default), or that could not
    connect, is sent again up to ``max_retries`` times. The n-th retry waits a random time
    between 0 and ``min(max_backoff, backoff * 2**n)`` ("full jitter"), but never less than
    the server's ``Retry-After``; a ``Retry-After`` longer than ``max_retry_after`` is not
    waited for (the error is raised at once). ``max_retries=0`` turns retries off.
    """

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 60.0
    statuses: frozenset[int] = field(default_factory=lambda: frozenset({429, 500, 502, 503, 504}))

    def delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number ``attempt`` (0-based); ``None``: give up."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        wait = random.uniform(0, min(self.max_backoff, self.backoff * 2**attempt))
        if retry_after is not None:
            # at least what the server asked for, plus a little jitter so that many
            # clients told the same time do not all come back at once
            wait = retry_after + random.uniform(0, min(1.0, self.backoff))
        return wait


def retry_after(response: httpx.Response) -> float | None:
    """The response's ``Retry-After`` in seconds (delta-seconds or an HTTP date)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class RetryTransport(httpx.BaseTransport):
    def __init__(self, policy: RetryPolicy, inner: httpx.BaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = self.inner.handle_request(request)
            except httpx.ConnectError:
                wait = self.policy.delay(attempt, None)
                if wait is None:
                    raise
            else:
                if response.status_code not in self.policy.statuses:
                    return response
                wait = self.policy.delay(attempt, retry_after(response))
                if wait is None:
                    return response
                response.close()
            time.sleep(wait)
            attempt += 1

    def close(self) -> None:
        self.inner.close()


class AsyncRetryTransport(httpx.AsyncBaseTransport):
    def __init__(self, policy: RetryPolicy, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self.inner.handle_async_request(request)
            except httpx.ConnectError:
                wait = self.policy.delay(attempt, None)
                if wait is None:
                    raise
            else:
                if response.status_code not in self.policy.statuses:
                    return response
                wait = self.policy.delay(attempt, retry_after(response))
                if wait is None:
                    return response
                await response.aclose()
            await asyncio.sleep(wait)
            attempt += 1

    async def aclose(self) -> None:
        await self.inner.aclose()
