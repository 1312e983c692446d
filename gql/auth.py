"""Who is calling: API keys (``Authorization: Bearer rg_...``) decide the tenant and what
the caller may do. The tenant never comes from a client-supplied field."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_operation_ast,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from storage.repositories.api_keys import SCOPES, ApiKeyRecord
from storage.store import Store
from storage.tables import DEFAULT_TENANT

#: what a browser-safe ``recommend`` key may ask for
RECOMMEND_FIELDS = frozenset(
    {"recommendations", "similarItems", "trending", "search", "__typename"}
)
ADMIN_MUTATIONS = frozenset({"modelTrain", "apiKeyCreate", "apiKeyRevoke", "interactionTypeUpsert"})
ADMIN_QUERIES = frozenset({"apiKeys"})
CACHE_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Auth:
    tenant: str
    scopes: frozenset[str]
    key_id: int | None = None


OPEN = Auth(DEFAULT_TENANT, frozenset(SCOPES))  # keys not required (embedded default)


class Unauthorized(Exception):
    pass


class RateLimited(Exception):
    def __init__(self, retry_after: float, scope: str) -> None:
        super().__init__(f"rate limit of this {scope} exceeded; retry in {retry_after:.2f}s")
        self.retry_after = retry_after


async def enforce_rate_limits(
    store: Store, auth: Auth, per_key: float, per_tenant: float, burst_seconds: float
) -> None:
    """Token buckets per key and per tenant (Redis, or in-process on the embedded default)."""
    buckets = [("tenant", f"rl:t:{auth.tenant}", per_tenant)]
    if auth.key_id is not None:
        buckets.insert(0, ("key", f"rl:k:{auth.tenant}:{auth.key_id}", per_key))
    for scope, key, rate in buckets:
        if rate > 0:
            wait = await store.cache.take(key, rate, max(1.0, rate * burst_seconds))
            if wait > 0:
                raise RateLimited(wait, scope)


class KeyCache:
    """Verified keys for a few seconds, so a request costs no extra query; a revoked key
    stops working within ``CACHE_SECONDS`` on every replica."""

    def __init__(self) -> None:
        self._hits: dict[str, tuple[float, ApiKeyRecord | None]] = {}

    async def verify(self, store: Store, secret: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        hit = self._hits.get(secret)
        if hit is not None and hit[0] > now:
            return hit[1]
        record = await store.api_keys.verify(secret)
        if len(self._hits) > 10_000:
            self._hits.clear()
        self._hits[secret] = (now + CACHE_SECONDS, record)
        return record

    def forget(self) -> None:
        self._hits.clear()


async def authenticate(header: str | None, store: Store, cache: KeyCache, required: bool) -> Auth:
    if not header:
        if required:
            raise Unauthorized("missing API key: send `Authorization: Bearer <key>`")
        return OPEN
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("malformed Authorization header: use `Bearer <key>`")
    record = await cache.verify(store, secret.strip())
    if record is None:
        raise Unauthorized("unknown or revoked API key")
    return Auth(record.tenant, frozenset(record.scopes), record.id)


def _root_fields(selection_set: SelectionSetNode, document: DocumentNode) -> Iterator[str]:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            yield sel.name.value
        elif isinstance(sel, InlineFragmentNode):
            yield from _root_fields(sel.selection_set, document)
        elif isinstance(sel, FragmentSpreadNode) and sel.name.value in fragments:
            yield from _root_fields(fragments[sel.name.value].selection_set, document)


def denied(auth: Auth, operation: OperationDefinitionNode, document: DocumentNode) -> str | None:
    """Why ``auth`` may not run ``operation`` (None when it may)."""
    scopes = auth.scopes
    if "admin" in scopes:
        return None
    fields = set(_root_fields(operation.selection_set, document))
    kind = operation.operation.value
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
    return "this key may only fetch recommendations, similar items, trending and search"


class ScopeGuard(SchemaExtension):
    """Refuses operations the caller's key does not allow, before anything executes."""

    def on_execute(self) -> Iterator[None]:
        ctx = self.execution_context
        auth: Auth = getattr(ctx.context, "auth", OPEN)
        document = ctx.graphql_document
        operation = get_operation_ast(document, ctx.operation_name) if document else None
        if operation is not None and document is not None:
            reason = denied(auth, operation, document)
            if reason is not None:
                ctx.result = GraphQLExecutionResult(
                    data=None,
                    errors=[GraphQLError(reason, extensions={"code": "FORBIDDEN"})],
                )
        yield
