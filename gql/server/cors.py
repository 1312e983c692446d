"""Cross-origin requests (CORS): which web pages may call the API.

A page may call ``/graphql`` from another origin only if that origin is allowed by the
setting ``RECOGRAPH_CORS_ORIGINS`` (every key) or by the key it sends (``allowedOrigins``,
set with ``apiKeyCreate`` / ``apiKeyUpdate``). None is allowed by default.

A preflight carries no key, so it is answered for the union of the origins any active key
allows; the request that follows is checked against its own key and refused with 403 when
the key does not allow the page's origin. Credentials (cookies) are never allowed: keys
travel in headers, so a wildcard origin cannot leak a session."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from gql.server.state import REQUEST_AUTH
from storage.store import Store

WILDCARD = "*"
ALLOWED_METHODS = "GET, POST"
#: request headers a page may send (the key, the user token, JSON bodies, tracing)
ALLOWED_HEADERS = "Authorization, Content-Type, X-User-Token, X-Request-Id"
#: response headers a page may read (retry hints, request ids for support)
EXPOSED_HEADERS = "Retry-After, X-Request-Id"
PREFLIGHT_MAX_AGE = "600"
#: how long the union of the keys' origins is kept before it is read again
KEY_ORIGINS_SECONDS = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443}


class OriginRefused(Exception):
    """The calling page's origin is not allowed for this key."""


def normalise_origin(value: str) -> str:
    """``scheme://host[:port]`` as browsers send it in ``Origin`` (lower case, no default
    port, no path), or ``*``; raises ValueError naming what is wrong."""
    text = value.strip()
    if text == WILDCARD:
        return WILDCARD
    if len(text) > 300 or not text.isascii() or not text.isprintable():
        raise ValueError("an origin is an ASCII URL like https://shop.example")
    parts = urlsplit(text)
    if parts.scheme.lower() not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{text!r} is not an origin like https://shop.example")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{text!r} has more than scheme, host and port")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{text!r} has an invalid port") from None
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_origins(setting: str) -> frozenset[str]:
    """``RECOGRAPH_CORS_ORIGINS``: comma-separated origins."""
    return frozenset(normalise_origin(o) for o in setting.split(",") if o.strip())


def _same_origin(request: web.Request, origin: str) -> bool:
    """Pages served by this host (GraphiQL) send ``Origin`` too: those are not cross-origin."""
    return urlsplit(origin).netloc.lower() == request.host.lower()


def _matches(origin: str, allowed: frozenset[str] | set[str]) -> bool:
    return WILDCARD in allowed or origin in allowed


class Cors:
    """Decides which origins may call, for one app."""

    def __init__(self, origins: frozenset[str]) -> None:
        self.store: Store | None = None  # set when the app has opened its store
        self.origins = origins
        self._key_origins: set[str] = set()
        self._loaded = -1e9

    def forget(self) -> None:
        """A key's origins changed (or a key was revoked): read the union again."""
        self._loaded = -1e9

    async def key_origins(self) -> set[str]:
        if self.store is not None and time.monotonic() - self._loaded > KEY_ORIGINS_SECONDS:
            self._loaded = time.monotonic()
            self._key_origins = await self.store.api_keys.all_allowed_origins()
        return self._key_origins

    def refusal(self, request: web.Request, key_origins: frozenset[str]) -> str | None:
        """Why a request with these key origins may not come from its page, if it may not."""
        origin = request.headers.get("Origin")
        if origin is None or _same_origin(request, origin):
            return None
        if _matches(origin, self.origins) or _matches(origin, key_origins):
            return None
        return (
            f"this API key may not be used from pages of {origin[:100]}: add the origin "
            "to the key's allowedOrigins (apiKeyUpdate) or to RECOGRAPH_CORS_ORIGINS"
        )

    async def _readable_by(self, origin: str, request: web.Request) -> bool:
        """Whether the page may read the answer: its key allows the origin, or (for errors
        such as an unknown key) some key or the setting does."""
        auth = request.get(REQUEST_AUTH)
        if auth is not None and _matches(origin, auth.origins):
            return True
        return _matches(origin, self.origins) or _matches(origin, await self.key_origins())

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def cors_middleware(
            request: web.Request,
            handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
        ) -> web.StreamResponse:
            origin = request.headers.get("Origin")
            if request.path != "/graphql" or origin is None or _same_origin(request, origin):
                return await handler(request)
            if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
                return await self._preflight(origin)
            response = await handler(request)
            if not response.prepared and await self._readable_by(origin, request):
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
                response.headers.add("Vary", "Origin")
            return response

        return cors_middleware

    async def _preflight(self, origin: str) -> web.Response:
        if not (_matches(origin, self.origins) or _matches(origin, await self.key_origins())):
            return web.json_response(
                {
                    "errors": [
                        {
                            "message": f"pages of {origin[:100]} may not call this API",
                            "extensions": {"code": "FORBIDDEN_ORIGIN"},
                        }
                    ]
                },
                status=403,
            )
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ALLOWED_METHODS,
                "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                "Access-Control-Max-Age": PREFLIGHT_MAX_AGE,
                "Vary": "Origin, Access-Control-Request-Headers",
            },
        )


CORS = web.AppKey("cors", Cors)
