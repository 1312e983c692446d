"""What the aiohttp app holds for its handlers (typed ``AppKey`` entries)."""

from __future__ import annotations

import weakref

from aiohttp import web

from gql.server.auth import Auth, Authenticator
from gql.server.observability import Metrics
from gql.server.runtime import EngineRuntime
from gql.server.settings import Settings
from storage.store import Store

STORE = web.AppKey("store", Store)
ENGINE = web.AppKey("engine", EngineRuntime)
AUTH = web.AppKey("auth", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
DRAINING = web.AppKey("draining", dict)
#: open sockets and their contexts, closed on shutdown or when their key is revoked
SOCKETS = web.AppKey("sockets", weakref.WeakKeyDictionary)
SETTINGS = web.AppKey("settings", Settings)

# per-request entries
#: the caller of an HTTP request, authenticated from its headers before its body is read
REQUEST_AUTH = web.RequestKey("auth", Auth)
#: the socket of a WebSocket request, once strawberry has prepared it
WEBSOCKET = web.RequestKey("websocket", web.WebSocketResponse)
