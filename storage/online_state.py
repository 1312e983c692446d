"""Online state that every recorded event updates at once, shared by the replicas.

With Redis, the process that records events updates, in one Lua call per slice of 200
events (a script holds Redis for every replica while it runs):

- **each user's recent history** (``os:h``): the user's events, newest first, kept only
  while they are *all* of the user's events and at most ``history_size`` of them. A
  recommendation reads it instead of PostgreSQL; a user with a longer history (or none
  kept) is read from PostgreSQL, and a short one is then stored, unless an event of the
  user arrived meanwhile (the user's version, ``os:v``, drawn from a per-tenant sequence
  that never expires, so it never repeats, is compared in the same script). A history
  lives ``history_seconds`` from the read that stored it (appending keeps its expiry), so
  what a process killed between PostgreSQL's commit and this update can leave stale is
  read afresh within that time. An event identical to a stored one (same item, weight
  and millisecond) is taken for the same event: that is how a history read from
  PostgreSQL just before an event's update arrives does not count it twice; two truly
  identical events in one millisecond count once here (PostgreSQL keeps both).
- **time-decayed trending counters** (``os:tr``): each positive event adds
  ``weight · 2^((t − base) / half-life)`` to its item, so the order of the counters is
  the order of the decayed sums at any later time; the base moves (and the counters are
  rescaled) long before the numbers could overflow. The top ``trending_size`` items are
  kept.
- **items used together** (``os:co``): events of the same user within
  ``together_minutes`` of each other (a session, a cart) count a pair, both ways; the
  ``together_size`` most frequent partners of each item are kept, for ``together_days``.

Without Redis (the embedded default) each process keeps its own trending counters and
pairs, updated from the event stream every process follows; histories are then always
read from PostgreSQL. A failed update (Redis away) makes the writer retire every stored
history (a generation counter in the keys) as soon as Redis answers again.

Keys are built inside the scripts from the tenant and user: a single Redis, not a cluster;
tenant ids may not contain ``:``, so two tenants' keys never meet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.algorithm import Query, RecordedEvent
from storage.backends import CacheBackend, RedisBackend

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OnlineLimits:
    history_size: int = 100
    history_seconds: int = 3600
    trending_half_life_hours: float = 24.0
    trending_size: int = 10_000
    together_minutes: float = 60.0
    together_size: int = 100
    together_days: int = 90
    #: events of one user remembered for pairing (the newest ones of the window)
    session_size: int = 20


#: events per script call (~20 ms of Redis time with dense sessions)
RECORD_SLICE = 200

#: a batch of events: histories, counters, sessions and pairs (ARGV: settings, then five
#: values per event)
RECORD = """
local p, t = ARGV[1], ARGV[2]
local hcap, httl = tonumber(ARGV[3]), tonumber(ARGV[4])
local half, tcap = tonumber(ARGV[5]), tonumber(ARGV[6])
local window, ssize = tonumber(ARGV[7]), tonumber(ARGV[8])
local cocap, cottl = tonumber(ARGV[9]), tonumber(ARGV[10])
local gen = redis.call('GET', p .. 'os:gen:' .. t) or '0'
local trend, basekey = p .. 'os:tr:' .. t, p .. 'os:tb:' .. t
local base = tonumber(redis.call('GET', basekey) or '')
local n = 10
while n + 4 <= #ARGV do
  local user, item = ARGV[n + 1], tonumber(ARGV[n + 2])
  local w, ts = tonumber(ARGV[n + 3]), tonumber(ARGV[n + 4])
  n = n + 4
  local vkey = p .. 'os:v:' .. t .. ':' .. user
  redis.call('SET', vkey, redis.call('INCR', p .. 'os:seq:' .. t), 'EX', httl)
  local hkey = p .. 'os:h:' .. gen .. ':' .. t .. ':' .. user
  local raw = redis.call('GET', hkey)
  if raw then
    local h = cjson.decode(raw)
    local events = h.e
    if type(events) ~= 'table' then events = {} end
    local stamp, dup = math.floor(ts * 1000 + 0.5), false
    for _, e in ipairs(events) do
      if e[1] == item and e[2] == w and math.floor(e[3] * 1000 + 0.5) == stamp then
        dup = true
        break
      end
    end
    if not dup then
      if #events >= hcap then
        redis.call('DEL', hkey)
      else
        table.insert(events, 1, {item, w, ts})
        h.e = events
        redis.call('SET', hkey, cjson.encode(h), 'KEEPTTL')
      end
    end
  end
  if w > 0 then
    if base == nil then
      base = ts
      redis.call('SET', basekey, tostring(base))
    end
    local power = (ts - base) / half
    if power > 500 then
      redis.call('ZUNIONSTORE', trend, 1, trend, 'WEIGHTS', tostring(2 ^ (-power)))
      base = ts
      redis.call('SET', basekey, tostring(base))
      power = 0
    end
    redis.call('ZINCRBY', trend, w * 2 ^ power, item)
    local skey = p .. 'os:s:' .. t .. ':' .. user
    local seen = {}
    for _, entry in ipairs(redis.call('LRANGE', skey, 0, ssize - 1)) do
      local sep = string.find(entry, ':', 1, true)
      local other = tonumber(string.sub(entry, 1, sep - 1))
      local when = tonumber(string.sub(entry, sep + 1))
      if other ~= item and not seen[other] and math.abs(ts - when) <= window then
        seen[other] = true
        for _, pair in ipairs({{item, other}, {other, item}}) do
          local ckey = p .. 'os:co:' .. t .. ':' .. pair[1]
          redis.call('ZINCRBY', ckey, 1, pair[2])
          redis.call('EXPIRE', ckey, cottl)
          local size = redis.call('ZCARD', ckey)
          if size > cocap + cocap / 5 then
            redis.call('ZREMRANGEBYRANK', ckey, 0, size - cocap - 1)
          end
        end
      end
    end
    redis.call('LPUSH', skey, item .. ':' .. ts)
    redis.call('LTRIM', skey, 0, ssize - 1)
    redis.call('EXPIRE', skey, math.ceil(window) + 1)
  end
end
local size = redis.call('ZCARD', trend)
if size > tcap + tcap / 5 then redis.call('ZREMRANGEBYRANK', trend, 0, size - tcap - 1) end
return 1
"""

#: a user's stored history, or the user's counter to store one against
HISTORY = """
local who = ARGV[2] .. ':' .. ARGV[3]
local gen = redis.call('GET', ARGV[1] .. 'os:gen:' .. ARGV[2]) or '0'
local raw = redis.call('GET', ARGV[1] .. 'os:h:' .. gen .. ':' .. who)
if raw then return {1, raw} end
return {0, redis.call('GET', ARGV[1] .. 'os:v:' .. who) or '', gen}
"""

#: store a history read from PostgreSQL unless an event of the user (or a retirement of
#: every history) came in between
REMEMBER = """
local who = ARGV[2] .. ':' .. ARGV[3]
local now = redis.call('GET', ARGV[1] .. 'os:v:' .. who) or ''
local gen = redis.call('GET', ARGV[1] .. 'os:gen:' .. ARGV[2]) or '0'
if now ~= ARGV[4] or gen ~= ARGV[5] then return 0 end
redis.call('SET', ARGV[1] .. 'os:h:' .. gen .. ':' .. who, ARGV[6], 'EX', ARGV[7])
return 1
"""

#: a deleted user's history and session are erased (the counter keeps a history read
#: before the deletion from being stored)
FORGET = """
local gen = redis.call('GET', ARGV[1] .. 'os:gen:' .. ARGV[2]) or '0'
local seq = ARGV[1] .. 'os:seq:' .. ARGV[2]
for i = 3, #ARGV do
  local who = ARGV[2] .. ':' .. ARGV[i]
  redis.call('SET', ARGV[1] .. 'os:v:' .. who, redis.call('INCR', seq), 'EX', 86400)
  redis.call('DEL', ARGV[1] .. 'os:h:' .. gen .. ':' .. who, ARGV[1] .. 'os:s:' .. who)
end
return 1
"""

#: the top of the trending counters, and the base they are relative to
TRENDING = """
local rows = redis.call('ZREVRANGE', ARGV[1] .. 'os:tr:' .. ARGV[2], 0, tonumber(ARGV[3]) - 1,
  'WITHSCORES')
return {redis.call('GET', ARGV[1] .. 'os:tb:' .. ARGV[2]) or '', rows}
"""


class OnlineState:
    """The interface, and the state of a process without Redis: trending counters and
    pairs kept here, bounded, fed by the event stream (``follows_stream``)."""

    #: whether this process must apply the events it hears from the stream (else the
    #: writer already updated the shared copy)
    follows_stream = True

    def __init__(self, limits: OnlineLimits | None = None) -> None:
        self.limits = limits or OnlineLimits()
        #: called with a description of each history read (instrumentation, tests)
        self.observers: list[Callable[[str], None]] = []
        self._trending: dict[str, dict[int, float]] = defaultdict(dict)
        self._base: dict[str, float] = {}
        self._sessions: OrderedDict[tuple[str, str], list[tuple[int, float]]] = OrderedDict()
        self._pairs: dict[str, OrderedDict[int, dict[int, float]]] = defaultdict(OrderedDict)

    async def record(self, tenant: str, events: Sequence[RecordedEvent]) -> None:
        lim = self.limits
        half = lim.trending_half_life_hours * 3600.0
        counters = self._trending[tenant]
        for e in events:
            if e.weight <= 0:
                continue
            base = self._base.setdefault(tenant, e.timestamp)
            power = (e.timestamp - base) / half
            if power > 500:
                scale = 2.0**-power
                for item in counters:
                    counters[item] *= scale
                self._base[tenant], power = e.timestamp, 0.0
            counters[e.item_pk] = counters.get(e.item_pk, 0.0) + e.weight * 2.0**power
            self._pair(tenant, e)
        if len(counters) > lim.trending_size * 1.2:
            self._trending[tenant] = _largest(counters, lim.trending_size)

    def _pair(self, tenant: str, e: RecordedEvent) -> None:
        lim = self.limits
        window = lim.together_minutes * 60.0
        key = (tenant, e.user)
        session = [s for s in self._sessions.pop(key, []) if abs(e.timestamp - s[1]) <= window]
        pairs = self._pairs[tenant]
        for other in {item for item, _ in session if item != e.item_pk}:
            for a, b in ((e.item_pk, other), (other, e.item_pk)):
                partners = pairs.pop(a, None) or {}
                partners[b] = partners.get(b, 0.0) + 1.0
                if len(partners) > lim.together_size * 1.2:
                    partners = _largest(partners, lim.together_size)
                pairs[a] = partners  # most recently paired last
            while len(pairs) > MEMORY_ITEMS:
                pairs.popitem(last=False)
        self._sessions[key] = [(e.item_pk, e.timestamp), *session][: lim.session_size]
        while len(self._sessions) > MEMORY_SESSIONS:
            self._sessions.popitem(last=False)

    async def retire(self, tenant: str) -> None:
        """Stop serving the tenant's stored histories (none are stored here)."""

    async def forget(self, tenant: str, users: Sequence[str]) -> None:
        """Erase what is kept of deleted users."""
        for user in users:
            self._sessions.pop((tenant, user), None)

    async def history(self, tenant: str, user: str) -> tuple[Query | None, Any]:
        """(the user's stored history, a token for ``remember``); None: read PostgreSQL."""
        return None, None

    async def remember(self, tenant: str, user: str, token: Any, query: Query) -> None:
        """Store a history just read from PostgreSQL (short ones only)."""

    async def trending(self, tenant: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(item pks, decayed weight) of the top ``limit`` items, best first."""
        counters = self._trending.get(tenant) or {}
        top = sorted(counters.items(), key=lambda kv: -kv[1])[:limit]
        return _arrays(top, self._decay(self._base.get(tenant)))

    def _decay(self, base: float | None) -> float:
        """What counters relative to ``base`` are worth now (1 without a base)."""
        half = self.limits.trending_half_life_hours * 3600.0
        return 1.0 if base is None else 2.0 ** -max(0.0, (time.time() - base) / half)

    async def together(self, tenant: str, item: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """(item pks, times used together with ``item``), most frequent first."""
        pairs = self._pairs.get(tenant)
        partners: dict[int, float] = (pairs.get(item) if pairs is not None else None) or {}
        return _arrays(sorted(partners.items(), key=lambda kv: (-kv[1], kv[0]))[:limit], 1.0)


#: without Redis: users whose sessions one process keeps, and items whose partners it keeps
MEMORY_SESSIONS = 200_000
MEMORY_ITEMS = 200_000


def _arrays(rows: Sequence[tuple[Any, Any]], scale: float) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((int(r[0]) for r in rows), np.int64, len(rows))
    values = np.fromiter((float(r[1]) * scale for r in rows), np.float64, len(rows))
    return ids, values


class RedisOnlineState(OnlineState):
    """Shared by every replica: the writer updates it before its mutation returns."""

    follows_stream = False

    def __init__(self, backend: RedisBackend, limits: OnlineLimits | None = None) -> None:
        super().__init__(limits)
        self.backend = backend
        #: tenants whose update failed: their stored histories may lack events
        self._retire: set[str] = set()
        self._retiring: asyncio.Task[None] | None = None

    def _settings(self) -> list[Any]:
        lim = self.limits
        return [
            lim.history_size,
            lim.history_seconds,
            lim.trending_half_life_hours * 3600.0,
            lim.trending_size,
            lim.together_minutes * 60.0,
            lim.session_size,
            lim.together_size,
            lim.together_days * 86_400,
        ]

    async def record(self, tenant: str, events: Sequence[RecordedEvent]) -> None:
        # in slices: one script holds Redis for every replica while it runs
        for start in range(0, len(events), RECORD_SLICE):
            args: list[Any] = [self.backend.prefix, tenant, *self._settings()]
            for e in events[start : start + RECORD_SLICE]:
                args += [e.user, e.item_pk, repr(float(e.weight)), repr(float(e.timestamp))]
            try:
                await self.backend.run_script(RECORD, [], args)
            except ConnectionError:
                await self.retire(tenant)
                return
            await asyncio.sleep(0)

    async def forget(self, tenant: str, users: Sequence[str]) -> None:
        if not users:
            return
        try:
            await self.backend.run_script(FORGET, [], [self.backend.prefix, tenant, *users])
        except ConnectionError:
            await self.retire(tenant)

    async def retire(self, tenant: str) -> None:
        """Stop serving the tenant's stored histories (a new generation hides them): after
        a lost update, which they may lack, and when items were deleted with their
        events. Done at once, or as soon as Redis answers again."""
        if await self.backend.incr(f"os:gen:{tenant}") is not None:
            return
        self._retire.add(tenant)
        if self._retiring is None or self._retiring.done():
            self._retiring = asyncio.create_task(self._retire_all(), name="online-retire")

    async def _retire_all(self) -> None:
        while self._retire:
            for tenant in list(self._retire):
                if await self.backend.incr(f"os:gen:{tenant}") is not None:
                    self._retire.discard(tenant)
                    log.info("online histories of %s retired", tenant)
            if self._retire:
                await asyncio.sleep(1.0)

    async def history(self, tenant: str, user: str) -> tuple[Query | None, Any]:
        for observe in self.observers:
            observe("online history of a user's interactions")
        if tenant in self._retire:
            return None, None
        try:
            found = await self.backend.run_script(HISTORY, [], [self.backend.prefix, tenant, user])
        except ConnectionError:
            return None, None
        if int(found[0]) != 1:
            return None, (_text(found[1]), _text(found[2]))
        stored = json.loads(found[1])
        events = stored["e"] if isinstance(stored.get("e"), list) else []
        return (
            Query(
                int(stored["pk"]),
                np.fromiter((e[0] for e in events), np.int64, len(events)),
                np.fromiter((e[1] for e in events), np.float32, len(events)),
                np.fromiter((e[2] for e in events), np.float64, len(events)),
                time.time(),
            ),
            None,
        )

    async def remember(self, tenant: str, user: str, token: Any, query: Query) -> None:
        if token is None or query.user_id is None or tenant in self._retire:
            return
        if len(query) >= self.limits.history_size:
            return  # kept only while it is the whole history
        events = [
            [int(i), float(w), float(t)]
            for i, w, t in zip(
                query.items.tolist(), query.weights.tolist(), query.times.tolist(), strict=True
            )
        ]
        body = json.dumps({"pk": int(query.user_id), "e": events}, separators=(",", ":"))
        version, generation = token
        with contextlib.suppress(ConnectionError):
            await self.backend.run_script(
                REMEMBER,
                [],
                [
                    self.backend.prefix,
                    tenant,
                    user,
                    version,
                    generation,
                    body,
                    self.limits.history_seconds,
                ],
            )

    async def trending(self, tenant: str, limit: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            base, rows = await self.backend.run_script(
                TRENDING, [], [self.backend.prefix, tenant, limit]
            )
        except ConnectionError:
            return _arrays([], 1.0)
        start = _text(base)
        return _arrays(_scored(rows), self._decay(float(start) if start else None))

    async def together(self, tenant: str, item: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        try:
            rows = await self.backend.run_script(
                "return redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')",
                [f"os:co:{tenant}:{item}"],
                [limit],
            )
        except ConnectionError:
            return _arrays([], 1.0)
        return _arrays(sorted(_scored(rows), key=lambda kv: (-float(kv[1]), int(kv[0]))), 1.0)


def _largest(values: dict[int, float], n: int) -> dict[int, float]:
    """The ``n`` entries of ``values`` with the largest values."""
    return dict(sorted(values.items(), key=lambda kv: -kv[1])[:n])


def _scored(rows: Sequence[Any]) -> list[tuple[Any, Any]]:
    """Redis ``WITHSCORES`` replies (member, score, member, score, ...) as pairs."""
    return [(rows[i], rows[i + 1]) for i in range(0, len(rows), 2)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value or "")


def online_state(backend: CacheBackend, limits: OnlineLimits | None = None) -> OnlineState:
    if isinstance(backend, RedisBackend):
        return RedisOnlineState(backend, limits)
    return OnlineState(limits)


__all__ = ["OnlineLimits", "OnlineState", "RedisOnlineState", "online_state"]
