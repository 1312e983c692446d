"""Webhook delivery: the worker every API process runs, and the checks that keep webhook
targets off private networks (SSRF).

The outbox (``webhook_deliveries``) is written by storage in the transaction of each change.
The worker claims due rows with ``FOR UPDATE SKIP LOCKED`` (so any number of processes can
run it), POSTs each as signed JSON and records the outcome: 2xx is delivered; anything else
is retried with exponential backoff and full jitter until ``RECOGRAPH_WEBHOOK_MAX_ATTEMPTS``,
then the delivery is dead (``webhookDeliveryReplay`` queues it again). It is woken over
pub/sub when deliveries are written and polls every second besides, so nothing waits on a
lost message. SQL stays in ``storage.repositories.webhooks``.

Targets must be public: a URL whose host is, or resolves to, a loopback, private,
link-local, multicast, reserved or unspecified address is refused at registration and
again at every attempt, unless ``RECOGRAPH_WEBHOOK_ALLOW_PRIVATE`` is set. The addresses are
checked in the resolver that the connection itself uses, so a name that resolves to a
public address when checked cannot connect to a private one (DNS rebinding). Redirects are
not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import random
import socket
import time
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from gql.server.settings import Settings
from storage.backends import SlowConsumer
from storage.repositories.webhooks import DUE_CHANNEL, DueDelivery
from storage.store import Store
from storage.tasks import stop_tasks

log = logging.getLogger(__name__)

MAX_URL_LENGTH = 2048
#: deliveries one process sends at once
CONCURRENCY = 16
#: the worker looks for due deliveries at least this often
POLL_SECONDS = 1.0
#: how often finished deliveries past their retention are deleted
PRUNE_SECONDS = 3600.0
#: bytes of a response read (only to report an error; the rest is dropped)
MAX_RESPONSE_BYTES = 1024
#: a claimed delivery is hidden from other workers for the attempt's timeout plus this
LEASE_MARGIN_SECONDS = 5.0
#: a worker that cannot reach the database says so at most this often
COMPLAIN_SECONDS = 60.0
#: how long resolving a host may take at registration
RESOLVE_SECONDS = 5.0
ALLOW_HINT = "RECOGRAPH_WEBHOOK_ALLOW_PRIVATE=true allows it"
#: NAT64 addresses carry an IPv4 address in their last 32 bits
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeTarget(Exception):
    """A webhook URL that may not be called."""


def address_refusal(ip: IPAddress) -> str | None:
    """What makes ``ip`` off limits to webhooks, e.g. "a loopback address" (None: it is a
    public address). IPv6 forms that carry an IPv4 address are judged by that too."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and (why := address_refusal(embedded)):
            return f"{why} ({embedded})"
    for attribute, what in (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, attribute):
            return what
    if not ip.is_global:
        return "not a public address"
    return None


def parse_target(url: str, allow_private: bool) -> URL:
    """The URL if its form is acceptable: http(s), a host, and (when the host is an IP
    address) a public one. Names are checked when resolved. Raises UnsafeTarget."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeTarget(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parsed = URL(url)
        host = parsed.host
    except (ValueError, TypeError):
        raise UnsafeTarget("is not a URL") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeTarget("must be an http:// or https:// URL")
    if not host:
        raise UnsafeTarget("needs a host")
    if not allow_private:
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return parsed
        if why := address_refusal(ip):
            raise UnsafeTarget(f"refused: {ip} is {why} ({ALLOW_HINT})")
    return parsed


async def check_url(url: str, allow_private: bool) -> str | None:
    """Why ``url`` cannot be a webhook (None: it can). Resolves the host now, so a name
    of a private address is refused at registration (and again at every delivery)."""
    try:
        parsed = parse_target(url, allow_private)
    except UnsafeTarget as exc:
        return str(exc)
    host = parsed.raw_host or ""
    if allow_private:
        return None
    try:
        ipaddress.ip_address(host)
        return None  # checked above
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, parsed.port or 443, type=socket.SOCK_STREAM), RESOLVE_SECONDS
        )
    except (OSError, TimeoutError, UnicodeError, ValueError):  # IDNA refuses some names
        return f"cannot resolve {host[:100]!r}"
    for *_, address in infos:
        why = _refusal_of(str(address[0]))
        if why:
            # the kind of address, not the address: internal DNS is not the caller's business
            return f"refused: {host} resolves to {why} ({ALLOW_HINT})"
    return None


def _refusal_of(address: str) -> str | None:
    try:
        return address_refusal(ipaddress.ip_address(address))
    except ValueError:  # e.g. a scoped link-local "fe80::1%eth0"
        return "not a public address"


class CheckedResolver(AbstractResolver):
    """Resolves names for webhook connections and refuses non-public addresses: the
    connection goes to exactly the addresses checked here, so DNS rebinding cannot slip a
    private address past the check."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        for result in results:
            if why := _refusal_of(result["host"]):
                raise OSError(errno.EACCES, f"refused: {host} resolves to {result['host']}, {why}")
        return results

    async def close(self) -> None:
        await self._inner.close()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under the secret."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def body_of(delivery: DueDelivery) -> bytes:
    """What is POSTed: the same bytes at every attempt."""
    return json.dumps(
        {
            "id": str(delivery.id),
            "type": delivery.kind,
            "createdAt": delivery.created_at.isoformat(),
            "data": delivery.payload,
        },
        separators=(",", ":"),
    ).encode()


def backoff(attempts: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones: full jitter, a random
    time up to ``min(cap, base * 2 ** (attempts - 1))``."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 60))
    return rng.uniform(0, ceiling)


class WebhookWorker:
    """Sends due deliveries of every tenant; one per API process."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.allow_private = settings.webhook_allow_private
        self.max_attempts = settings.webhook_max_attempts
        self.timeout = settings.webhook_timeout_seconds
        self.backoff_base = settings.webhook_backoff_seconds
        self.backoff_cap = settings.webhook_backoff_cap_seconds
        self.lease = self.timeout + LEASE_MARGIN_SECONDS
        self.retention_days = settings.webhook_retention_days
        self._rng = random.Random()
        self._woken = asyncio.Event()
        self._next_due = math.inf
        self._backlog = False
        self._complained = -math.inf

    def _session(self) -> aiohttp.ClientSession:
        resolver = None if self.allow_private else CheckedResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, limit=CONCURRENCY)
        return aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            headers={"User-Agent": "Recograph-Webhooks"},
            trust_env=False,  # no proxy from the environment: the target is what was checked
        )

    async def run(self) -> None:
        """Deliver until cancelled (then stop the attempts in flight: their leases run
        out and another attempt is made later, by this or another process)."""
        helpers = [
            asyncio.create_task(self._listen(), name="webhooks-wake"),
            asyncio.create_task(self.store.webhooks.follow_changes(), name="webhooks-changes"),
        ]
        if self.retention_days > 0:
            helpers.append(asyncio.create_task(self._prune(), name="webhooks-retention"))
        in_flight: set[asyncio.Task[None]] = set()
        session = self._session()
        try:
            while True:
                free = CONCURRENCY - len(in_flight)
                claimed: list[DueDelivery] = []
                if free > 0:
                    try:
                        claimed = await self.store.webhooks.claim(free, self.lease)
                    except Exception as exc:  # the database is away: try at the next poll
                        if time.monotonic() - self._complained > COMPLAIN_SECONDS:
                            self._complained = time.monotonic()
                            log.warning("could not claim webhook deliveries: %s", exc)
                for delivery in claimed:
                    task = asyncio.create_task(self._deliver(session, delivery))
                    in_flight.add(task)
                    task.add_done_callback(self._done(in_flight))
                self._backlog = free <= 0 or len(claimed) == free
                await self._sleep()
        finally:
            await stop_tasks([*helpers, *in_flight])
            await session.close()

    async def _prune(self) -> None:
        """Keep the delivery log to ``webhook_retention_days`` (every process tries hourly;
        deleting what another already deleted costs nothing)."""
        while True:
            try:
                deleted = await self.store.webhooks.prune(self.retention_days)
                if deleted:
                    log.info("deleted %d webhook deliveries past their retention", deleted)
            except Exception as exc:
                log.warning("could not prune webhook deliveries: %s", exc)
            await asyncio.sleep(PRUNE_SECONDS)

    def _done(self, in_flight: set[asyncio.Task[None]]) -> Any:
        def done(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if self._backlog:  # room for another while deliveries wait
                self._woken.set()

        return done

    async def _sleep(self) -> None:
        """Until woken, the earliest retry this worker scheduled, or the next poll."""
        now = time.monotonic()
        if self._next_due <= now:
            self._next_due = math.inf
        wait = min(POLL_SECONDS, max(self._next_due - now, 0.0))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), wait)
        self._woken.clear()

    async def _listen(self) -> None:
        while True:
            try:
                async for _ in self.store.cache.subscribe(DUE_CHANNEL):
                    self._woken.set()
            except SlowConsumer:
                self._woken.set()

    async def _deliver(self, session: aiohttp.ClientSession, delivery: DueDelivery) -> None:
        body = body_of(delivery)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Recograph-Event": delivery.kind,
            "Recograph-Delivery": str(delivery.id),
            "Recograph-Timestamp": timestamp,
            "Recograph-Signature": signature(delivery.secret, timestamp, body),
        }
        status: int | None = None
        error: str | None = None
        delivered = False
        try:
            url = parse_target(delivery.url, self.allow_private)
            async with session.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                delivered = 200 <= status < 300
                if not delivered:
                    head = await resp.content.read(MAX_RESPONSE_BYTES)
                    text = head.decode("utf-8", "replace").strip()
                    error = f"HTTP {status}" + (f": {text[:200]}" if text else "")
        except UnsafeTarget as exc:
            error = str(exc)
        except TimeoutError:
            error = f"no response within {self.timeout:g}s"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            log.exception("webhook delivery %s failed", delivery.id)
            error = f"{type(exc).__name__}"
        retry_in: float | None = None
        if not delivered and delivery.attempts < self.max_attempts:
            retry_in = backoff(delivery.attempts, self.backoff_base, self.backoff_cap, self._rng)
        try:
            outcome = await self.store.webhooks.finish(
                delivery, delivered=delivered, http_status=status, error=error, retry_in=retry_in
            )
        except Exception as exc:  # the lease runs out and the delivery is tried again
            log.warning("could not record webhook delivery %s: %s", delivery.id, exc)
            return
        if retry_in is not None and retry_in < POLL_SECONDS:  # sooner than the next poll
            self._next_due = min(self._next_due, time.monotonic() + retry_in)
            self._woken.set()
        if outcome == "dead":
            log.warning(
                "webhook delivery %s (tenant %s) is dead after %d attempts: %s",
                delivery.id,
                delivery.tenant,
                delivery.attempts,
                error,
            )
