"""``/graphql``: the strawberry view over HTTP and graphql-transport-ws. HTTP requests are
authenticated here; sockets log in at connection_init and every operation on a socket is
authorised again."""

from __future__ import annotations

import asyncio
import json
import math
import time
import weakref
from collections import Counter
from typing import Any

from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http import GraphQLRequestData
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    Message,
    SubscribeMessage,
)
from strawberry.types import ExecutionResult

from gql.context import Context
from gql.schema import build_schema
from gql.server import graphiql
from gql.server.auth import ANONYMOUS, Auth, RateLimited, Unauthorized
from gql.server.cors import CORS, OriginRefused
from gql.server.observability import Metrics
from gql.server.responses import MAX_RESPONSE_BYTES, ResponseCache
from gql.server.settings import Settings
from gql.server.state import AUTH, ENGINE, REQUEST_AUTH, SOCKETS, STORE, WEBSOCKET
from storage import json_codec

STATIC_PREFIX = "/graphiql-static"
USER_TOKEN_HEADER = "X-User-Token"
#: WebSocket close code of a socket whose key was refused (graphql-transport-ws's 4403)
CLOSE_FORBIDDEN = 4403


class BadRequestBody(Exception):
    """A body or message that is not the JSON object GraphQL over HTTP expects."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message


class RequestTimeout(Exception):
    pass


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _decode_slowly(data: str | bytes) -> object:
    """The standard library's decoder, for what ``json_codec`` does not give orjson: it
    names the error of an invalid body, and keeps integers beyond 64 bits exact."""
    text = data.decode("utf-8") if isinstance(data, bytes) else data
    return json.loads(text, parse_constant=_reject_constant)


def decode_strict_json(data: str | bytes) -> object:
    """Strict JSON (RFC 8259): UTF-8 only, no NaN/Infinity (not numbers in JSON), and an
    object (or a list, for batches) at the top."""
    try:
        value = json_codec.loads(data, _decode_slowly)
    except RecursionError:
        raise BadRequestBody("request body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequestBody(f"request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict | list):
        raise BadRequestBody("request body must be a JSON object")
    return value


class AuthorisedTransportWS(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws where every operation is authorised like an HTTP request: the
    key is verified again (a revoked key stops working on an open socket) and the rate
    limits are charged per operation; a key may hold a bounded number of operations."""

    view: RecographView  # the subclass our view installs

    async def handle_message(self, message: Message) -> None:
        """Messages are checked before strawberry reads them: anything but the protocol's
        shapes closes the socket with 4400, naming what is wrong."""
        problem = _message_problem(message, self.view.settings.max_query_length)
        if problem is not None:
            await self.handle_invalid_message(problem)
            return
        await super().handle_message(message)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if not self.connection_acknowledged:
            await super().handle_subscribe(message)  # closes with 4401
            return
        context = self.context
        try:
            await self.view.reauthorise(context)
        except Unauthorized as exc:
            await self.websocket.close(CLOSE_FORBIDDEN, str(exc)[:120])
            return
        except RateLimited as exc:
            await self._refuse(message, str(exc), "RATE_LIMITED", exc.retry_after)
            return
        auth = context.auth
        # a browser key is shared by every visitor of a site: each user has its own share
        key = (
            None if auth.key_id is None else (auth.key_id, auth.user if auth.browser_only else None)
        )
        limit = self.view.settings.max_subscriptions_per_key
        if key is not None and self.view.in_flight[key] >= limit:
            whose = "this user of this key" if key[1] is not None else "this key"
            await self._refuse(message, f"{whose} has {limit} open operations", "TOO_MANY")
            return
        await super().handle_subscribe(message)
        operation = self.operations.get(message["id"])
        if key is not None and operation is not None and operation.task is not None:
            self.view.in_flight[key] += 1
            operation.task.add_done_callback(lambda _: self.view.release(key))

    async def _refuse(
        self, message: SubscribeMessage, text: str, code: str, retry: float | None = None
    ) -> None:
        extensions: dict[str, Any] = {"code": code}
        if retry is not None:
            extensions["retryAfter"] = math.ceil(retry)
        await self.send_message(
            {
                "id": message["id"],
                "type": "error",
                "payload": [{"message": text, "extensions": extensions}],
            }
        )


class RecographView(GraphQLView[Context, None]):
    graphql_transport_ws_handler_class = AuthorisedTransportWS

    def __init__(self, settings: Settings, metrics: Metrics | None = None) -> None:
        super().__init__(
            schema=build_schema(settings, metrics),
            graphql_ide="graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
            max_subscriptions_per_connection=settings.max_subscriptions_per_connection,
        )
        self.settings = settings
        #: open operations per key (per key and user for browser keys)
        self.in_flight: Counter[tuple[int, str | None]] = Counter()
        self.responses = ResponseCache(settings)
        self.metrics = metrics

    def is_websocket_origin_allowed(self, request: Any, origin: str) -> bool:
        """Let the handshake through: which pages may use a socket depends on its key, which
        arrives with connection_init, where ``on_ws_connect`` checks the origin (4403)."""
        return True

    def release(self, key: tuple[int, str | None]) -> None:
        self.in_flight[key] -= 1
        if self.in_flight[key] <= 0:
            del self.in_flight[key]

    def _context(self, request: web.Request, response: Any, **fields: Any) -> Context:
        runtime = request.app[ENGINE]
        return Context.build(
            request.app[STORE],
            runtime.service,
            runtime.trainer,
            self.settings,
            request,
            response,
            **fields,
        )

    async def execute_single(
        self,
        request: Any,
        request_adapter: Any,
        sub_response: Any,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        """A repeated recommendations query whose inputs did not change is answered from
        the cache without executing it (``gql/server/responses.py``)."""
        run = super().execute_single(
            request, request_adapter, sub_response, context, root_value, request_data
        )
        responses, cache = self.responses, context.store.results
        shape = (
            responses.shape(request_data.query, request_data.operation_name)
            if cache.enabled
            else None
        )
        variables = request_data.variables
        user = responses.user_of(shape, variables) if shape is not None else None
        if shape is None or user is None or request_data.query is None:
            return await run
        key = await responses.key(
            context, request_data.query, request_data.operation_name, variables
        )
        cached, stamp = await cache.lookup(context.tenant, user, key)
        if self.metrics is not None:
            self.metrics.cache.labels("responses", "miss" if cached is None else "hit").inc()
        if cached is not None:
            run.close()
            return ExecutionResult(data=json_codec.loads(cached), errors=None)
        result = await run
        if not result.errors and result.data is not None:
            body = json_codec.dumps(result.data).encode()
            if len(body) <= MAX_RESPONSE_BYTES:
                await cache.store(context.tenant, key, stamp, body)
        return result

    async def parse_http_body(
        self,
        request: Any,  # strawberry's request adapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        data = await super().parse_http_body(request)
        limit = self.settings.max_query_length
        for item in data if isinstance(data, list) else [data]:
            if item.query is not None and len(item.query) > limit:
                raise BadRequestBody(f"query is longer than {limit:,} characters")
            if item.operation_name is not None and not isinstance(item.operation_name, str):
                raise BadRequestBody("operationName must be a string or null")
        return data

    async def get_context(self, request: web.Request, response: Any) -> Context:
        if self.is_websocket_request(request):
            # a socket is anonymous until its connection_init authenticates it
            request[WEBSOCKET] = response
            headers = request.headers
            return self._context(
                request,
                response,
                auth=ANONYMOUS,
                credentials=headers.get("Authorization"),
                user_token=headers.get(USER_TOKEN_HEADER),
            )
        if self.should_render_graphql_ide(self.request_adapter_class(request)):
            return self._context(request, response, auth=ANONYMOUS)  # the page runs nothing
        auth = request.get(REQUEST_AUTH) or await authenticate_request(request)
        s = self.settings
        await request.app[AUTH].charge(
            auth, s.rate_limit_per_key, s.rate_limit_per_tenant, s.rate_limit_burst_seconds
        )
        request.app[ENGINE].follow(auth.tenant)
        return self._context(request, response, auth=auth)

    async def on_ws_connect(self, context: Context) -> None:
        """Log the socket in: the key comes from the connection_init payload (browsers
        cannot set headers on a WebSocket) or the handshake's Authorization header."""
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        credentials = _credentials(params) or context.credentials
        user_token = params.get("userToken") or context.user_token
        request = context.request
        assert request is not None
        try:
            auth = await request.app[AUTH].authenticate(
                credentials, user_token if isinstance(user_token, str) else None, request.remote
            )
        except (Unauthorized, RateLimited) as exc:
            raise ConnectionRejectionError({"message": str(exc)}) from None
        # browsers let any page open a WebSocket to any host: the origin is checked here
        refusal = request.app[CORS].refusal(request, auth.origins)
        if refusal is not None:
            raise ConnectionRejectionError({"message": refusal})
        context.login(auth, credentials, user_token if isinstance(user_token, str) else None)
        request.app[SOCKETS][context.response] = context
        if auth.user_expires is not None:  # what it may see ends with its user token
            delay = max(0.0, auth.user_expires - time.time())
            asyncio.get_running_loop().call_later(delay, _expire, weakref.ref(context.response))
        request.app[ENGINE].follow(auth.tenant)

    async def reauthorise(self, context: Context) -> None:
        """Per operation on a socket: the key again, and the rate limits."""
        request = context.request
        assert request is not None
        auth = await request.app[AUTH].authenticate(
            context.credentials, context.user_token, request.remote
        )
        if (auth.tenant, auth.key_id) != (context.auth.tenant, context.auth.key_id):
            raise Unauthorized("the key of this socket changed")
        s = self.settings
        await request.app[AUTH].charge(
            auth, s.rate_limit_per_key, s.rate_limit_per_tenant, s.rate_limit_burst_seconds
        )

    def decode_json(self, data: str | bytes) -> object:
        """A WebSocket message (a bad one closes the socket with 4400)."""
        try:
            return decode_strict_json(data)
        except BadRequestBody as exc:
            raise json.JSONDecodeError(exc.reason, "", 0) from None

    def encode_json(self, data: object) -> str:
        return json_codec.dumps(data)

    def parse_json(self, data: str | bytes) -> Any:
        """An HTTP body or query parameter (a bad one is a 400 naming the reason)."""
        return decode_strict_json(data)

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        html = graphiql.render_graphiql_html(graphql_path="/graphql", static_prefix=STATIC_PREFIX)
        return web.Response(text=html, content_type="text/html")


async def authenticate_request(request: web.Request) -> Auth:
    """The caller of an HTTP request, from its headers (kept on the request, so that the
    body of a request without a valid key, or from a page the key does not allow, is never
    read)."""
    auth = await request.app[AUTH].authenticate(
        request.headers.get("Authorization"),
        request.headers.get(USER_TOKEN_HEADER),
        request.remote,
    )
    refusal = request.app[CORS].refusal(request, auth.origins)
    if refusal is not None:
        raise OriginRefused(refusal)
    request[REQUEST_AUTH] = auth
    return auth


#: closings of sockets whose token expired, kept until done (tasks are weakly referenced)
_CLOSING: set[asyncio.Task[Any]] = set()


def _expire(socket_ref: weakref.ref[Any]) -> None:
    """Close a socket whose user token expired (if it is still open)."""
    socket = socket_ref()
    if socket is not None and not socket.closed:
        task = asyncio.ensure_future(
            socket.close(code=CLOSE_FORBIDDEN, message=b"user token expired")
        )
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)


def _message_problem(message: object, max_query_length: int) -> str | None:
    """What is wrong with a graphql-transport-ws message, if anything."""
    if not isinstance(message, dict):
        return "a message must be a JSON object"
    kind = message.get("type")
    if not isinstance(kind, str):
        return "a message must have a string type"
    if kind != "subscribe":
        return None
    ident, payload = message.get("id"), message.get("payload")
    if not isinstance(ident, str) or not 0 < len(ident) <= 256:
        return "subscribe: id must be a string of 1 to 256 characters"
    if not isinstance(payload, dict):
        return "subscribe: payload must be an object"
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        return "subscribe: payload.query must be a non-empty string"
    if len(query) > max_query_length:
        return f"subscribe: payload.query is longer than {max_query_length:,} characters"
    if not isinstance(payload.get("variables"), dict | None):
        return "subscribe: payload.variables must be an object or null"
    if not isinstance(payload.get("operationName"), str | None):
        return "subscribe: payload.operationName must be a string or null"
    if not isinstance(payload.get("extensions"), dict | None):
        return "subscribe: payload.extensions must be an object or null"
    return None


def _credentials(params: dict[str, Any]) -> str | None:
    for name in ("Authorization", "authorization"):
        value = params.get(name)
        if isinstance(value, str) and value:
            return value
    key = params.get("apiKey")
    return f"Bearer {key}" if isinstance(key, str) and key else None
