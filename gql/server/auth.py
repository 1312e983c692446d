"""Who is calling: API keys (``Authorization: Bearer rg_...``) decide the tenant and what
the caller may do; signed user tokens say which user a browser-held key may act for. The
tenant never comes from a client-supplied field."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from typing import Any

import jwt
from cachetools import TTLCache

from storage.repositories.api_keys import SCOPES, ApiKeyRecord
from storage.store import Store
from storage.tables import DEFAULT_TENANT

#: what a browser-safe ``recommend`` key may ask for
RECOMMEND_FIELDS = frozenset(
    {"recommendations", "similarItems", "boughtTogether", "trending", "search", "__typename"}
)
#: what it may follow (its own user's events only: the resolver checks the user token)
RECOMMEND_SUBSCRIPTIONS = frozenset({"interactionRecorded", "recommendationsUpdated"})
ADMIN_MUTATIONS = frozenset(
    {
        "modelTrain",
        "apiKeyCreate",
        "apiKeyUpdate",
        "apiKeyRevoke",
        "interactionTypeUpsert",
        "webhookCreate",
        "webhookUpdate",
        "webhookDelete",
        "webhookDeliveryReplay",
        "scenarioUpsert",
        "scenarioDelete",
        "experimentCreate",
        "experimentStart",
        "experimentStop",
        "experimentPromote",
    }
)
ADMIN_QUERIES = frozenset(
    {
        "apiKeys",
        "webhooks",
        "webhookDeliveries",
        "scenarios",
        "scenario",
        "experiments",
        "experiment",
        "interactionVolume",
    }
)
KEY_CACHE_SECONDS = 10.0
USER_TOKEN_AUDIENCE = "recograph"
USER_TOKEN_ALGORITHM = "HS256"
KEY_FORMAT = re.compile(r"^rg_([0-9a-f]{8})_[A-Za-z0-9_-]{20,100}$")


@dataclass(frozen=True, slots=True)
class Auth:
    tenant: str
    scopes: frozenset[str]
    key_id: int | None = None
    #: the user a signed user token vouches for (browser keys act only for this user)
    user: str | None = None
    #: origins whose pages may use the key (CORS)
    origins: frozenset[str] = frozenset()
    #: when the user token expires (Unix seconds): a socket logged in with it closes then
    user_expires: float | None = None

    @property
    def browser_only(self) -> bool:
        """A ``recommend`` key without any read/write/admin scope."""
        return "recommend" in self.scopes and not self.scopes & {"read", "write", "admin"}


OPEN = Auth(DEFAULT_TENANT, frozenset(SCOPES))  # keys not required (embedded default)
ANONYMOUS = Auth("", frozenset())  # may run nothing (the IDE page, a socket before login)


class Unauthorized(Exception):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after: float, scope: str) -> None:
        super().__init__(f"rate limit of this {scope} exceeded; retry in {retry_after:.2f}s")
        self.retry_after = retry_after


def denied(auth: Auth, kind: str, fields: frozenset[str]) -> str | None:
    """Why ``auth`` may not run an operation of ``kind`` with these root ``fields``."""
    scopes = auth.scopes
    if not scopes:
        return "authenticate first: send an API key"
    if "admin" in scopes:
        return None
    if kind == "mutation":
        if "write" not in scopes:
            return "this key may not change data (needs the write scope)"
        if fields & ADMIN_MUTATIONS:
            return f"{', '.join(sorted(fields & ADMIN_MUTATIONS))} needs the admin scope"
        return None
    if fields & ADMIN_QUERIES:
        return f"{', '.join(sorted(fields & ADMIN_QUERIES))} needs the admin scope"
    if scopes & {"read", "write"}:
        return None
    if "recommend" in scopes and kind == "query" and fields <= RECOMMEND_FIELDS:
        return None
    if "recommend" in scopes and kind == "subscription" and fields <= RECOMMEND_SUBSCRIPTIONS:
        return None
    return (
        "this key may only fetch recommendations, similar items, trending and search, and "
        "follow its user's events"
    )


def authorise_context(context: Any, kind: str, fields: frozenset[str]) -> str | None:
    """The query guard's scope check (the same on HTTP and WebSocket)."""
    return denied(getattr(context, "auth", ANONYMOUS), kind, fields)


def forbid_other_users(auth: Auth, user_id: str) -> str | None:
    """A browser key may only ask about the user its user token names."""
    if not auth.browser_only:
        return None
    if auth.user is None:
        return (
            "a recommend-scope key needs a user token for this user: send "
            "`X-User-Token` (minted by your backend with userTokenCreate)"
        )
    if auth.user != user_id:
        return "the user token is for another user"
    return None


def mint_user_token(secret: str, user_id: str, ttl_seconds: float) -> tuple[str, float]:
    """A signed token (JWT, HS256) that lets a browser key act for ``user_id``."""
    expires = time.time() + ttl_seconds
    claims = {"sub": user_id, "exp": int(expires), "aud": USER_TOKEN_AUDIENCE}
    return jwt.encode(claims, secret, algorithm=USER_TOKEN_ALGORITHM), expires


def read_user_token(secret: str, token: str) -> tuple[str, float]:
    """The user a token vouches for and when it expires (Unix seconds); raises
    Unauthorized if forged, expired or malformed."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[USER_TOKEN_ALGORITHM],
            audience=USER_TOKEN_AUDIENCE,
            options={"require": ["sub", "exp"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("the user token has expired") from None
    except jwt.PyJWTError:
        raise Unauthorized("invalid user token") from None
    user = claims.get("sub")
    if not isinstance(user, str) or not user:
        raise Unauthorized("invalid user token")
    return user, float(claims["exp"])


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable()


class Authenticator:
    """Verifies keys and user tokens for one app.

    Verified keys (and unknown ones) are cached for ``KEY_CACHE_SECONDS`` in a bounded
    cache, so a request usually costs no query; a revocation is broadcast so every replica
    forgets the key at once. Lookups of keys not in the cache are limited per client
    address, so guessing keys costs the guesser, not the database."""

    def __init__(
        self,
        store: Store,
        *,
        required: bool,
        lookups_per_address: float = 20.0,
        max_cached_keys: int = 10_000,
    ) -> None:
        self.store = store
        self.required = required
        self.lookups_per_address = lookups_per_address
        self._keys: TTLCache[str, ApiKeyRecord | None] = TTLCache(
            max_cached_keys, KEY_CACHE_SECONDS
        )
        self._secrets: TTLCache[str, str] = TTLCache(10_000, 60.0)
        self._prefixes: set[str] = set()
        self._prefixes_loaded = -1e9
        self._blocked: TTLCache[str, float] = TTLCache(100_000, 60.0)

    async def _key(self, secret: str, address: str | None) -> ApiKeyRecord | None:
        """The key behind ``secret``. A malformed key is refused without a lookup. Failed
        lookups are limited per client address and key prefix (prefixes no active key has
        share one bucket), so guessing costs the guesser, not the database, and a sprayer
        sharing an address (behind a proxy or NAT) does not lock other keys out."""
        if secret in self._keys:
            return self._keys[secret]
        match = KEY_FORMAT.match(secret)
        if match is None:
            return None
        prefix = match.group(1) if await self._prefix_known(match.group(1)) else "?"
        bucket = f"authfail:{address}:{prefix}"
        blocked = self._blocked.get(bucket)
        if blocked is not None and blocked > time.monotonic():
            raise RateLimited(blocked - time.monotonic(), "key prefix from this address")
        record = await self.store.api_keys.verify(secret)
        self._keys[secret] = record
        if record is None and self.lookups_per_address > 0 and address:
            rate = self.lookups_per_address
            wait = await self.store.cache.take(bucket, rate, rate * 2)
            if wait > 0:
                self._blocked[bucket] = time.monotonic() + wait
        return record

    async def _prefix_known(self, prefix: str) -> bool:
        """Whether an active key has ``prefix`` (the set is reloaded at most once a second,
        when a prefix it lacks is asked for)."""
        if prefix in self._prefixes:
            return True
        if time.monotonic() - self._prefixes_loaded > 1.0:
            self._prefixes_loaded = time.monotonic()
            self._prefixes = await self.store.api_keys.active_prefixes()
        return prefix in self._prefixes

    def forget(self, key_id: int | None = None) -> None:
        """Drop cached keys (one key by id, or all)."""
        self._prefixes_loaded = -1e9  # a revoked key's prefix must be looked up again
        if key_id is None:
            self._keys.clear()
            return
        for secret, record in list(self._keys.items()):
            if record is not None and record.id == key_id:
                self._keys.pop(secret, None)

    async def tenant_secret(self, tenant: str) -> str:
        secret = self._secrets.get(tenant)
        if secret is None:
            secret = await self.store.tenant_secret(tenant)
            self._secrets[tenant] = secret
        return secret

    async def authenticate(
        self,
        authorization: str | None,
        user_token: str | None = None,
        address: str | None = None,
    ) -> Auth:
        """The caller of a request from its ``Authorization`` value and optional user token."""
        if not authorization:
            if self.required:
                raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
            auth = OPEN
        else:
            if not _printable_ascii(authorization):
                raise Unauthorized("malformed Authorization header: use `Bearer <key>`")
            scheme, _, secret = authorization.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise Unauthorized("malformed Authorization header: use `Bearer <key>`")
            record = await self._key(secret.strip(), address)
            if record is None:
                raise Unauthorized("unknown or revoked API key")
            auth = Auth(
                record.tenant,
                frozenset(record.scopes),
                record.id,
                origins=frozenset(record.allowed_origins),
            )
        if user_token:
            if not _printable_ascii(user_token) or len(user_token) > 4096:
                raise Unauthorized("invalid user token")
            user, expires = read_user_token(await self.tenant_secret(auth.tenant), user_token)
            auth = replace(auth, user=user, user_expires=expires)
        return auth

    async def charge(
        self, auth: Auth, per_key: float, per_tenant: float, burst_seconds: float
    ) -> None:
        """Token buckets per key and per tenant (Redis, or in-process on the embedded
        default); raises RateLimited when one is empty."""
        buckets = [("tenant", f"rl:t:{auth.tenant}", per_tenant)]
        if auth.key_id is not None:
            buckets.insert(0, ("key", f"rl:k:{auth.tenant}:{auth.key_id}", per_key))
        for scope, key, rate in buckets:
            if rate > 0:
                wait = await self.store.cache.take(key, rate, max(1.0, rate * burst_seconds))
                if wait > 0:
                    raise RateLimited(wait, scope)
