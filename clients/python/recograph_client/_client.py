"""The facade: :class:`Recograph` (sync) and :class:`AsyncRecograph` (async) over the
generated clients. They add authentication, retries, batching of bulk writes and typed
exceptions; every call returns the generated pydantic models."""

from __future__ import annotations

from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar, cast

import httpx
import websockets
from pydantic import BaseModel

from ._retry import AsyncRetryTransport, RetryPolicy, RetryTransport, retry_after
from .errors import (
    AuthenticationError,
    RateLimitError,
    RecographConnectionError,
    RecographError,
    RecographGraphQLError,
    RecographHTTPError,
    RecographUserError,
)
from .generated.algorithms import AlgorithmsAlgorithms
from .generated.api_key_create import ApiKeyCreateApiKeyCreate
from .generated.async_base_client import HttpClient as AsyncHttpClient
from .generated.async_client import GeneratedAsyncClient
from .generated.base_client import HttpClient as SyncHttpClient
from .generated.base_model import UNSET
from .generated.client import GeneratedClient
from .generated.enums import ApiKeyScope, SearchRetriever
from .generated.exceptions import (
    GraphQLClientError,
    GraphQLClientGraphQLMultiError,
    GraphQLClientHttpError,
    GraphQLClientInvalidResponseError,
)
from .generated.fragments import (
    ApiKeyFields,
    ExperimentFields,
    ItemFields,
    RecommendationFields,
    UserErrorFields,
)
from .generated.input_types import (
    AlgorithmInput,
    BoostInput,
    ExperimentCreateInput,
    InteractionInput,
    InteractionTypeUpsertInput,
    ItemFilterInput,
    ItemInput,
    PromotedInput,
    RecommendationFilterInput,
    ScenarioUpsertInput,
    UserInput,
)
from .generated.interaction_recorded import InteractionRecordedInteractionRecorded
from .generated.interaction_type_upsert import InteractionTypeUpsertInteractionTypeUpsert
from .generated.item_upsert import ItemUpsertItemUpsert
from .generated.items import ItemsItems
from .generated.model_train import ModelTrainModelTrainModels
from .generated.model_trained import ModelTrainedModelTrained
from .generated.recommendation_page import RecommendationPageRecommendations
from .generated.recommendations_updated import RecommendationsUpdatedRecommendationsUpdated
from .generated.scenario_upsert import ScenarioUpsertScenarioUpsertScenario
from .generated.search import SearchSearch
from .generated.user_token_create import UserTokenCreateUserTokenCreate
from .generated.user_upsert import UserUpsertUserUpsert

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
E = TypeVar("E")

#: rows sent in one bulk call unless told otherwise (the server takes up to
#: RECOGRAPH_MAX_BATCH_SIZE, 20,000 by default)
DEFAULT_BATCH_SIZE = 1000

ModelOrDict = Mapping[str, Any] | BaseModel


@dataclass(frozen=True)
class BulkUpsertResult:
    """What ``items_bulk_upsert`` wrote, over all its batches."""

    upserted_count: int = 0
    created_count: int = 0
    batches: int = 0


@dataclass(frozen=True)
class RecordResult:
    """What ``interaction_record``/``interactions_record`` stored, over all batches."""

    recorded_count: int = 0
    duplicate_count: int = 0
    batches: int = 0


@dataclass
class _Totals:
    counts: list[int]
    errors: list[UserErrorFields] = field(default_factory=list)
    batches: int = 0


def _model(cls: type[M], value: ModelOrDict) -> M:
    """An input model from a model or a dict (camelCase or snake_case keys)."""
    if isinstance(value, cls):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump(by_alias=True, exclude_unset=True)
    return cls.model_validate(value)


def _optional(cls: type[M], value: ModelOrDict | None) -> M | None:
    return None if value is None else _model(cls, value)


def _models(cls: type[M], values: Sequence[ModelOrDict] | None) -> list[M] | None:
    return None if values is None else [_model(cls, v) for v in values]


def _check(errors: Sequence[UserErrorFields], result: Any = None) -> None:
    if errors:
        raise RecographUserError(errors, result)


def _shift(errors: Sequence[UserErrorFields], offset: int) -> list[UserErrorFields]:
    """Error paths of a batch, renumbered to count from the start of the whole list."""
    out = []
    for error in errors:
        path = error.field
        if offset and path and len(path) > 2 and path[0] == "input" and path[2].isdigit():
            path = [*path[:2], str(int(path[2]) + offset), *path[3:]]
            error = error.model_copy(update={"field": path})
        out.append(error)
    return out


def _batches(rows: Sequence[T], size: int) -> Iterator[tuple[int, Sequence[T]]]:
    if size < 1:
        raise ValueError("batch_size must be at least 1")
    for start in range(0, len(rows), size):
        yield start, rows[start : start + size]


def _error_body(response: httpx.Response) -> tuple[Any, str]:
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:200] or response.reason_phrase
    try:
        return body, str(body["errors"][0]["message"])
    except (KeyError, IndexError, TypeError):
        return body, response.reason_phrase


def _translate(exc: Exception) -> RecographError:
    """The client's exception for an error of the generated code, httpx or websockets."""
    if isinstance(exc, GraphQLClientHttpError):
        response = cast(httpx.Response, exc.response)
        body, message = _error_body(response)
        if exc.status_code == 401:
            return AuthenticationError(401, message, body)
        if exc.status_code == 429:
            return RateLimitError(429, message, body, retry_after(response))
        return RecographHTTPError(exc.status_code, message, body)
    if isinstance(exc, GraphQLClientGraphQLMultiError):
        errors = [
            {
                "message": e.message,
                "locations": e.locations,
                "path": e.path,
                "extensions": e.extensions or {},
            }
            for e in exc.errors
        ]
        return RecographGraphQLError(errors, exc.data)
    if isinstance(exc, GraphQLClientInvalidResponseError):
        response = cast(httpx.Response, exc.response)
        return RecographHTTPError(response.status_code, "not a GraphQL response")
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        frame = exc.rcvd
        if frame is not None and frame.code in (4401, 4403):
            return AuthenticationError(401, frame.reason or "the server refused the socket")
        return RecographConnectionError(f"the subscription's socket closed: {exc}")
    if isinstance(exc, httpx.TransportError | OSError | websockets.exceptions.WebSocketException):
        return RecographConnectionError(str(exc) or type(exc).__name__)
    return RecographError(str(exc))


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except RecographError:
        raise
    except (
        GraphQLClientError,
        httpx.TransportError,
        OSError,
        websockets.exceptions.WebSocketException,
    ) as exc:
        raise _translate(exc) from exc


class _Base:
    """Settings shared by the sync and async clients."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        user_token: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        ws_url: str | None = None,
    ) -> None:
        self.url = url
        self.retry = retry or RetryPolicy()
        self.batch_size = batch_size
        self.timeout = timeout
        self.headers: dict[str, str] = {}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        if user_token:
            self.headers["X-User-Token"] = user_token
        self.ws_url = ws_url or ("ws" + url[4:] if url.startswith("http") else url)
        # sockets log in with connection_init (browsers cannot send headers on them)
        self.ws_payload: dict[str, Any] = {}
        if api_key:
            self.ws_payload["apiKey"] = api_key
        if user_token:
            self.ws_payload["userToken"] = user_token


class Recograph(_Base):
    """The synchronous client.

    >>> client = Recograph("http://127.0.0.1:8000/graphql", api_key="rg_...")
    >>> client.items_bulk_upsert([{"id": "sku-1", "title": "Espresso machine"}])

    Mutations raise :class:`RecographUserError` when the server reports ``userErrors``
    (bulk calls first send every batch, so the valid rows are written). Requests answered
    with 429 or 5xx are retried per ``retry``. Use it as a context manager, or call
    :meth:`close`. Subscriptions need :class:`AsyncRecograph`.
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        user_token: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        super().__init__(
            url,
            api_key,
            user_token=user_token,
            timeout=timeout,
            retry=retry,
            batch_size=batch_size,
        )
        self.http = httpx.Client(
            headers=self.headers, timeout=timeout, transport=RetryTransport(self.retry)
        )
        self.generated = GeneratedClient(
            url=url, headers=self.headers, http_client=cast(SyncHttpClient, self.http)
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with _translated():
            return fn(*args, **kwargs)

    # catalogue and events

    def item_upsert(self, item: ModelOrDict) -> ItemUpsertItemUpsert:
        """Create an item or update the fields given."""
        payload = self._call(self.generated.item_upsert, _model(ItemInput, item)).item_upsert
        _check(payload.user_errors, payload)
        return payload

    def items_bulk_upsert(
        self, items: Sequence[ModelOrDict], *, batch_size: int | None = None
    ) -> BulkUpsertResult:
        """Create or update many items, ``batch_size`` per request."""
        rows = [_model(ItemInput, i) for i in items]
        totals = _Totals([0, 0])
        for offset, batch in _batches(rows, batch_size or self.batch_size):
            payload = self._call(self.generated.items_bulk_upsert, list(batch)).items_bulk_upsert
            _add(totals, offset, payload.user_errors, payload.upserted_count, payload.created_count)
        bulk = BulkUpsertResult(totals.counts[0], totals.counts[1], totals.batches)
        _check(totals.errors, bulk)
        return bulk

    def item_delete(self, item_id: str) -> str | None:
        payload = self._call(self.generated.item_delete, item_id).item_delete
        _check(payload.user_errors, payload)
        return payload.deleted_item_id

    def item(self, item_id: str) -> ItemFields | None:
        return self._call(self.generated.item, item_id).item

    def items(
        self,
        *,
        filter: ModelOrDict | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> ItemsItems:
        """One page of the catalogue (``.nodes``, ``.page_info.end_cursor``)."""
        return self._call(
            self.generated.items,
            first=first,
            filter_=_optional(ItemFilterInput, filter),
            after=after,
        ).items

    def user_upsert(self, user: ModelOrDict) -> UserUpsertUserUpsert:
        payload = self._call(self.generated.user_upsert, _model(UserInput, user)).user_upsert
        _check(payload.user_errors, payload)
        return payload

    def user_delete(self, user_id: str) -> str | None:
        payload = self._call(self.generated.user_delete, user_id).user_delete
        _check(payload.user_errors, payload)
        return payload.deleted_user_id

    def interaction_record(self, interaction: ModelOrDict) -> RecordResult:
        """Record one event."""
        event = _model(InteractionInput, interaction)
        payload = self._call(self.generated.interaction_record, event).interaction_record
        result = RecordResult(payload.recorded_count, payload.duplicate_count, 1)
        _check(payload.user_errors, result)
        return result

    def interactions_record(
        self, interactions: Sequence[ModelOrDict], *, batch_size: int | None = None
    ) -> RecordResult:
        """Record many events, ``batch_size`` per request (each batch is one transaction)."""
        rows = [_model(InteractionInput, i) for i in interactions]
        totals = _Totals([0, 0])
        for offset, batch in _batches(rows, batch_size or self.batch_size):
            result = self._call(self.generated.interactions_record, list(batch))
            payload = result.interactions_record
            _add(
                totals, offset, payload.user_errors, payload.recorded_count, payload.duplicate_count
            )
        recorded = RecordResult(totals.counts[0], totals.counts[1], totals.batches)
        _check(totals.errors, recorded)
        return recorded

    def interaction_type_upsert(
        self, interaction_type: ModelOrDict
    ) -> InteractionTypeUpsertInteractionTypeUpsert:
        value = _model(InteractionTypeUpsertInput, interaction_type)
        payload = self._call(self.generated.interaction_type_upsert, value)
        _check(payload.interaction_type_upsert.user_errors, payload.interaction_type_upsert)
        return payload.interaction_type_upsert

    # recommendations

    def recommendations(
        self,
        user_id: str,
        *,
        first: int = 10,
        algorithms: Sequence[ModelOrDict] | None = None,
        filter: ModelOrDict | None = None,
        exclude_seen: bool = True,
        explain: bool = True,
        calibration: float | None = None,
        diversity: float | None = None,
        scenario: str | None = None,
        boosts: Sequence[ModelOrDict] | None = None,
        promoted: ModelOrDict | None = None,
        max_per_category: int | None = None,
        rotation: float | None = None,
        cold_items: float | None = None,
    ) -> list[RecommendationFields]:
        """What ``user_id`` should see next, best first, each with its ``reasons``;
        ``scenario`` fills in what the other arguments leave out (and, while an
        experiment runs on it, picks the user's variant); ``boosts``, ``promoted``,
        ``max_per_category`` and ``rotation`` are business rules."""
        return self._call(
            self.generated.recommendations,
            user_id=user_id,
            first=first,
            exclude_seen=exclude_seen,
            explain=explain,
            algorithms=_models(AlgorithmInput, algorithms),
            filter_=_optional(RecommendationFilterInput, filter),
            calibration=calibration,
            diversity=diversity,
            scenario=scenario,
            boosts=_models(BoostInput, boosts),
            promoted=_optional(PromotedInput, promoted),
            max_per_category=max_per_category,
            rotation=rotation,
            cold_items=cold_items,
        ).recommendations

    def similar_items(
        self,
        item_id: str,
        *,
        first: int = 10,
        algorithms: Sequence[ModelOrDict] | None = None,
        filter: ModelOrDict | None = None,
    ) -> list[RecommendationFields]:
        return self._call(
            self.generated.similar_items,
            item_id=item_id,
            first=first,
            algorithms=_models(AlgorithmInput, algorithms),
            filter_=_optional(RecommendationFilterInput, filter),
        ).similar_items

    def recommendation_page(
        self,
        user_id: str,
        *,
        first: int = 10,
        after: str | None = None,
        algorithms: Sequence[ModelOrDict] | None = None,
        filter: ModelOrDict | None = None,
        scenario: str | None = None,
    ) -> list[RecommendationPageRecommendations]:
        """A page of one ranked list: each item has its ``recommendation_id`` and
        ``cursor``; pass the last ``cursor`` as ``after`` for the next page (never a
        repeat). Under an experiment, items also name its ``experiment_id`` and
        ``variant``: send ``recommendation_id`` with the user's events to attribute them."""
        return self._call(
            self.generated.recommendation_page,
            user_id=user_id,
            first=first,
            after=after,
            algorithms=_models(AlgorithmInput, algorithms),
            filter_=_optional(RecommendationFilterInput, filter),
            scenario=scenario,
        ).recommendations

    # --- scenarios and A/B experiments (admin scope) ----------------------------------
    def scenario_upsert(self, name: str, **settings: Any) -> ScenarioUpsertScenarioUpsertScenario:
        """Save a new version of scenario ``name``; ``settings`` are the fields of
        ``ScenarioUpsertInput`` (``algorithms``, ``filter``, ``boosts``, ``promoted``,
        ``max_per_category``, ``diversity``, ``calibration``, ``rotation``, ...)."""
        value = _model(ScenarioUpsertInput, {"name": name, **settings})
        payload = self._call(self.generated.scenario_upsert, value).scenario_upsert
        _check(payload.user_errors, payload)
        assert payload.scenario is not None
        return payload.scenario

    def experiment_create(
        self, name: str, scenario: str, variants: Sequence[ModelOrDict], **options: Any
    ) -> ExperimentFields:
        """A draft A/B test of ``scenario``: ``variants`` are ``{name, scenario, share}``
        (the first is the control); ``options``: ``metric``, ``click_types``,
        ``conversion_types``."""
        value = _model(
            ExperimentCreateInput,
            {"name": name, "scenario": scenario, "variants": list(variants), **options},
        )
        payload = self._call(self.generated.experiment_create, value).experiment_create
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    def experiment_start(self, experiment_id: str) -> ExperimentFields:
        payload = self._call(self.generated.experiment_start, experiment_id).experiment_start
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    def experiment_stop(self, experiment_id: str) -> ExperimentFields:
        payload = self._call(self.generated.experiment_stop, experiment_id).experiment_stop
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    def experiment_promote(self, experiment_id: str, variant: str) -> ExperimentFields:
        """Make ``variant``'s settings the scenario's new version and stop the test."""
        payload = self._call(
            self.generated.experiment_promote, experiment_id, variant
        ).experiment_promote
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    def experiment(self, experiment_id: str) -> ExperimentFields | None:
        """Its variants' exposures, clicks, conversions, rates with intervals, and the
        significance test against the control."""
        return self._call(self.generated.experiment, experiment_id).experiment

    def bought_together(
        self, item_id: str, *, first: int = 10, filter: ModelOrDict | None = None
    ) -> list[RecommendationFields]:
        """Items most often used with ``item_id`` in one session, most first."""
        return self._call(
            self.generated.bought_together,
            item_id=item_id,
            first=first,
            filter_=_optional(RecommendationFilterInput, filter),
        ).bought_together

    def trending(
        self,
        *,
        first: int = 10,
        window_hours: float | None = None,
        filter: ModelOrDict | None = None,
    ) -> list[RecommendationFields]:
        return self._call(
            self.generated.trending,
            first=first,
            window_hours=window_hours,
            filter_=_optional(RecommendationFilterInput, filter),
        ).trending

    def search(
        self,
        text: str,
        *,
        first: int = 10,
        filter: ModelOrDict | None = None,
        retrievers: Sequence[SearchRetriever | str] | None = None,
    ) -> list[SearchSearch]:
        return self._call(
            self.generated.search,
            text=text,
            first=first,
            filter_=_optional(RecommendationFilterInput, filter),
            retrievers=None if retrievers is None else [SearchRetriever(r) for r in retrievers],
        ).search

    # models

    def model_train(
        self,
        algorithms: Sequence[str] | None = None,
        *,
        configs: Sequence[ModelOrDict] | None = None,
    ) -> list[ModelTrainModelTrainModels]:
        """Train now (all algorithms unless named); returns the new model versions."""
        payload = self._call(
            self.generated.model_train,
            algorithms=None if algorithms is None else list(algorithms),
            configs=_models(AlgorithmInput, configs),
        ).model_train
        _check(payload.user_errors, payload)
        return payload.models

    def algorithms(self) -> list[AlgorithmsAlgorithms]:
        return self._call(self.generated.algorithms).algorithms

    # access

    def api_key_create(
        self,
        name: str,
        scopes: Sequence[ApiKeyScope | str],
        *,
        allowed_origins: Sequence[str] = (),
    ) -> ApiKeyCreateApiKeyCreate:
        """A new key of your tenant; ``.secret`` is shown only this once.
        ``allowed_origins``: web pages (``https://shop.example``) that may use it (CORS)."""
        payload = self._call(
            self.generated.api_key_create,
            name,
            [ApiKeyScope(s.upper()) for s in scopes],
            list(allowed_origins),
        ).api_key_create
        _check(payload.user_errors, payload)
        return payload

    def api_key_update(self, prefix: str, *, allowed_origins: Sequence[str]) -> ApiKeyFields:
        """Replace the web origins that may use key ``prefix``."""
        payload = self._call(
            self.generated.api_key_update, prefix, list(allowed_origins)
        ).api_key_update
        _check(payload.user_errors, payload)
        assert payload.api_key is not None
        return payload.api_key

    def api_key_revoke(self, prefix: str) -> str | None:
        payload = self._call(self.generated.api_key_revoke, prefix).api_key_revoke
        _check(payload.user_errors, payload)
        return payload.revoked_prefix

    def api_keys(self) -> list[ApiKeyFields]:
        return self._call(self.generated.api_keys).api_keys

    def user_token_create(
        self, user_id: str, *, ttl_seconds: int = 3600
    ) -> UserTokenCreateUserTokenCreate:
        """A signed token that lets a ``recommend``-scope key act for ``user_id``."""
        payload = self._call(self.generated.user_token_create, user_id, ttl_seconds)
        _check(payload.user_token_create.user_errors, payload.user_token_create)
        return payload.user_token_create


class AsyncRecograph(_Base):
    """The asyncio client: the same methods as :class:`Recograph`, awaited, plus
    subscriptions over graphql-transport-ws::

        async with AsyncRecograph(url, api_key=key) as client:
            async for event in client.interaction_recorded(user_id="u1"):
                print(event.item_id, event.type_)
    """

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        user_token: str | None = None,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        ws_url: str | None = None,
    ) -> None:
        super().__init__(
            url,
            api_key,
            user_token=user_token,
            timeout=timeout,
            retry=retry,
            batch_size=batch_size,
            ws_url=ws_url,
        )
        self.http = httpx.AsyncClient(
            headers=self.headers, timeout=timeout, transport=AsyncRetryTransport(self.retry)
        )
        self.generated = GeneratedAsyncClient(
            url=url,
            headers=self.headers,
            http_client=cast(AsyncHttpClient, self.http),
            ws_url=self.ws_url,
            ws_connection_init_payload=self.ws_payload or None,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.http.aclose()

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        with _translated():
            return await fn(*args, **kwargs)

    # catalogue and events

    async def item_upsert(self, item: ModelOrDict) -> ItemUpsertItemUpsert:
        """Create an item or update the fields given."""
        result = await self._call(self.generated.item_upsert, _model(ItemInput, item))
        payload: ItemUpsertItemUpsert = result.item_upsert
        _check(payload.user_errors, payload)
        return payload

    async def items_bulk_upsert(
        self, items: Sequence[ModelOrDict], *, batch_size: int | None = None
    ) -> BulkUpsertResult:
        """Create or update many items, ``batch_size`` per request."""
        rows = [_model(ItemInput, i) for i in items]
        totals = _Totals([0, 0])
        for offset, batch in _batches(rows, batch_size or self.batch_size):
            result = await self._call(self.generated.items_bulk_upsert, list(batch))
            payload = result.items_bulk_upsert
            _add(totals, offset, payload.user_errors, payload.upserted_count, payload.created_count)
        bulk = BulkUpsertResult(totals.counts[0], totals.counts[1], totals.batches)
        _check(totals.errors, bulk)
        return bulk

    async def item_delete(self, item_id: str) -> str | None:
        payload = (await self._call(self.generated.item_delete, item_id)).item_delete
        _check(payload.user_errors, payload)
        return payload.deleted_item_id

    async def item(self, item_id: str) -> ItemFields | None:
        return (await self._call(self.generated.item, item_id)).item

    async def items(
        self,
        *,
        filter: ModelOrDict | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> ItemsItems:
        """One page of the catalogue (``.nodes``, ``.page_info.end_cursor``)."""
        result = await self._call(
            self.generated.items,
            first=first,
            filter_=_optional(ItemFilterInput, filter),
            after=after,
        )
        return result.items

    async def user_upsert(self, user: ModelOrDict) -> UserUpsertUserUpsert:
        result = await self._call(self.generated.user_upsert, _model(UserInput, user))
        payload: UserUpsertUserUpsert = result.user_upsert
        _check(payload.user_errors, payload)
        return payload

    async def user_delete(self, user_id: str) -> str | None:
        payload = (await self._call(self.generated.user_delete, user_id)).user_delete
        _check(payload.user_errors, payload)
        return payload.deleted_user_id

    async def interaction_record(self, interaction: ModelOrDict) -> RecordResult:
        """Record one event."""
        event = _model(InteractionInput, interaction)
        payload = (await self._call(self.generated.interaction_record, event)).interaction_record
        result = RecordResult(payload.recorded_count, payload.duplicate_count, 1)
        _check(payload.user_errors, result)
        return result

    async def interactions_record(
        self, interactions: Sequence[ModelOrDict], *, batch_size: int | None = None
    ) -> RecordResult:
        """Record many events, ``batch_size`` per request (each batch is one transaction)."""
        rows = [_model(InteractionInput, i) for i in interactions]
        totals = _Totals([0, 0])
        for offset, batch in _batches(rows, batch_size or self.batch_size):
            result = await self._call(self.generated.interactions_record, list(batch))
            payload = result.interactions_record
            _add(
                totals, offset, payload.user_errors, payload.recorded_count, payload.duplicate_count
            )
        recorded = RecordResult(totals.counts[0], totals.counts[1], totals.batches)
        _check(totals.errors, recorded)
        return recorded

    async def interaction_type_upsert(
        self, interaction_type: ModelOrDict
    ) -> InteractionTypeUpsertInteractionTypeUpsert:
        value = _model(InteractionTypeUpsertInput, interaction_type)
        result = await self._call(self.generated.interaction_type_upsert, value)
        payload: InteractionTypeUpsertInteractionTypeUpsert = result.interaction_type_upsert
        _check(payload.user_errors, payload)
        return payload

    # recommendations

    async def recommendations(
        self,
        user_id: str,
        *,
        first: int = 10,
        algorithms: Sequence[ModelOrDict] | None = None,
        filter: ModelOrDict | None = None,
        exclude_seen: bool = True,
        explain: bool = True,
        calibration: float | None = None,
        diversity: float | None = None,
        scenario: str | None = None,
        boosts: Sequence[ModelOrDict] | None = None,
        promoted: ModelOrDict | None = None,
        max_per_category: int | None = None,
        rotation: float | None = None,
        cold_items: float | None = None,
    ) -> list[RecommendationFields]:
        """What ``user_id`` should see next, best first, each with its ``reasons``."""
        result = await self._call(
            self.generated.recommendations,
            user_id=user_id,
            first=first,
            exclude_seen=exclude_seen,
            explain=explain,
            algorithms=_models(AlgorithmInput, algorithms),
            filter_=_optional(RecommendationFilterInput, filter),
            calibration=calibration,
            diversity=diversity,
            scenario=scenario,
            boosts=_models(BoostInput, boosts),
            promoted=_optional(PromotedInput, promoted),
            max_per_category=max_per_category,
            rotation=rotation,
            cold_items=cold_items,
        )
        return result.recommendations

    async def similar_items(
        self,
        item_id: str,
        *,
        first: int = 10,
        algorithms: Sequence[ModelOrDict] | None = None,
        filter: ModelOrDict | None = None,
    ) -> list[RecommendationFields]:
        result = await self._call(
            self.generated.similar_items,
            item_id=item_id,
            first=first,
            algorithms=_models(AlgorithmInput, algorithms),
            filter_=_optional(RecommendationFilterInput, filter),
        )
        return result.similar_items

    async def recommendation_page(
        self,
        user_id: str,
        *,
        first: int = 10,
        after: str | None = None,
        algorithms: Sequence[ModelOrDict] | None = None,
        filter: ModelOrDict | None = None,
        scenario: str | None = None,
    ) -> list[RecommendationPageRecommendations]:
        """A page of one ranked list (see the sync client)."""
        result = await self._call(
            self.generated.recommendation_page,
            user_id=user_id,
            first=first,
            after=after,
            algorithms=_models(AlgorithmInput, algorithms),
            filter_=_optional(RecommendationFilterInput, filter),
            scenario=scenario,
        )
        return result.recommendations

    # --- scenarios and A/B experiments (admin scope) ----------------------------------
    async def scenario_upsert(
        self, name: str, **settings: Any
    ) -> ScenarioUpsertScenarioUpsertScenario:
        """Save a new version of scenario ``name``; ``settings`` are the fields of
        ``ScenarioUpsertInput`` (``algorithms``, ``filter``, ``boosts``, ``promoted``,
        ``max_per_category``, ``diversity``, ``calibration``, ``rotation``, ...)."""
        value = _model(ScenarioUpsertInput, {"name": name, **settings})
        payload = (await self._call(self.generated.scenario_upsert, value)).scenario_upsert
        _check(payload.user_errors, payload)
        assert payload.scenario is not None
        return payload.scenario

    async def experiment_create(
        self, name: str, scenario: str, variants: Sequence[ModelOrDict], **options: Any
    ) -> ExperimentFields:
        """A draft A/B test of ``scenario``: ``variants`` are ``{name, scenario, share}``
        (the first is the control); ``options``: ``metric``, ``click_types``,
        ``conversion_types``."""
        value = _model(
            ExperimentCreateInput,
            {"name": name, "scenario": scenario, "variants": list(variants), **options},
        )
        payload = (await self._call(self.generated.experiment_create, value)).experiment_create
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    async def experiment_start(self, experiment_id: str) -> ExperimentFields:
        payload = (
            await self._call(self.generated.experiment_start, experiment_id)
        ).experiment_start
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    async def experiment_stop(self, experiment_id: str) -> ExperimentFields:
        payload = (await self._call(self.generated.experiment_stop, experiment_id)).experiment_stop
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    async def experiment_promote(self, experiment_id: str, variant: str) -> ExperimentFields:
        """Make ``variant``'s settings the scenario's new version and stop the test."""
        payload = (
            await self._call(self.generated.experiment_promote, experiment_id, variant)
        ).experiment_promote
        _check(payload.user_errors, payload)
        assert payload.experiment is not None
        return payload.experiment

    async def experiment(self, experiment_id: str) -> ExperimentFields | None:
        """Its variants' exposures, clicks, conversions, rates with intervals, and the
        significance test against the control."""
        return (await self._call(self.generated.experiment, experiment_id)).experiment

    async def bought_together(
        self, item_id: str, *, first: int = 10, filter: ModelOrDict | None = None
    ) -> list[RecommendationFields]:
        """Items most often used with ``item_id`` in one session, most first."""
        result = await self._call(
            self.generated.bought_together,
            item_id=item_id,
            first=first,
            filter_=_optional(RecommendationFilterInput, filter),
        )
        return result.bought_together

    async def trending(
        self,
        *,
        first: int = 10,
        window_hours: float | None = None,
        filter: ModelOrDict | None = None,
    ) -> list[RecommendationFields]:
        result = await self._call(
            self.generated.trending,
            first=first,
            window_hours=window_hours,
            filter_=_optional(RecommendationFilterInput, filter),
        )
        return result.trending

    async def search(
        self,
        text: str,
        *,
        first: int = 10,
        filter: ModelOrDict | None = None,
        retrievers: Sequence[SearchRetriever | str] | None = None,
    ) -> list[SearchSearch]:
        result = await self._call(
            self.generated.search,
            text=text,
            first=first,
            filter_=_optional(RecommendationFilterInput, filter),
            retrievers=None if retrievers is None else [SearchRetriever(r) for r in retrievers],
        )
        return result.search

    # models

    async def model_train(
        self,
        algorithms: Sequence[str] | None = None,
        *,
        configs: Sequence[ModelOrDict] | None = None,
    ) -> list[ModelTrainModelTrainModels]:
        """Train now (all algorithms unless named); returns the new model versions."""
        result = await self._call(
            self.generated.model_train,
            algorithms=None if algorithms is None else list(algorithms),
            configs=_models(AlgorithmInput, configs),
        )
        payload = result.model_train
        _check(payload.user_errors, payload)
        return payload.models

    async def algorithms(self) -> list[AlgorithmsAlgorithms]:
        result = await self._call(self.generated.algorithms)
        return result.algorithms

    # access

    async def api_key_create(
        self,
        name: str,
        scopes: Sequence[ApiKeyScope | str],
        *,
        allowed_origins: Sequence[str] = (),
    ) -> ApiKeyCreateApiKeyCreate:
        """A new key of your tenant; ``.secret`` is shown only this once.
        ``allowed_origins``: web pages (``https://shop.example``) that may use it (CORS)."""
        result = await self._call(
            self.generated.api_key_create,
            name,
            [ApiKeyScope(s.upper()) for s in scopes],
            list(allowed_origins),
        )
        payload: ApiKeyCreateApiKeyCreate = result.api_key_create
        _check(payload.user_errors, payload)
        return payload

    async def api_key_update(self, prefix: str, *, allowed_origins: Sequence[str]) -> ApiKeyFields:
        """Replace the web origins that may use key ``prefix``."""
        result = await self._call(self.generated.api_key_update, prefix, list(allowed_origins))
        payload = result.api_key_update
        _check(payload.user_errors, payload)
        assert payload.api_key is not None
        return payload.api_key

    async def api_key_revoke(self, prefix: str) -> str | None:
        payload = (await self._call(self.generated.api_key_revoke, prefix)).api_key_revoke
        _check(payload.user_errors, payload)
        return payload.revoked_prefix

    async def api_keys(self) -> list[ApiKeyFields]:
        return (await self._call(self.generated.api_keys)).api_keys

    async def user_token_create(
        self, user_id: str, *, ttl_seconds: int = 3600
    ) -> UserTokenCreateUserTokenCreate:
        """A signed token that lets a ``recommend``-scope key act for ``user_id``."""
        result = await self._call(self.generated.user_token_create, user_id, ttl_seconds)
        payload: UserTokenCreateUserTokenCreate = result.user_token_create
        _check(payload.user_errors, payload)
        return payload

    # subscriptions (graphql-transport-ws)

    def interaction_recorded(
        self, user_id: str | None = None
    ) -> AsyncIterator[InteractionRecordedInteractionRecorded]:
        """Events as they are recorded (of ``user_id`` only, if given), until you stop
        iterating. Each iteration opens its own socket."""
        stream = self.generated.interaction_recorded(user_id=UNSET if user_id is None else user_id)
        return _subscribe(stream, lambda message: message.interaction_recorded)

    def recommendations_updated(
        self,
        user_id: str,
        *,
        first: int = 10,
        algorithms: Sequence[ModelOrDict] | None = None,
        filter: ModelOrDict | None = None,
    ) -> AsyncIterator[RecommendationsUpdatedRecommendationsUpdated]:
        """``user_id``'s list now, then again whenever their events, a new model or a
        catalogue change alter it (``.causes``, ``.recommendations``)."""
        stream = self.generated.recommendations_updated(
            user_id,
            first,
            algorithms=_models(AlgorithmInput, algorithms),
            filter_=_optional(RecommendationFilterInput, filter),
        )
        return _subscribe(stream, lambda message: message.recommendations_updated)

    def model_trained(
        self, algorithm: str | None = None
    ) -> AsyncIterator[ModelTrainedModelTrained]:
        """Each new model version of your tenant (of ``algorithm`` only, if given)."""
        stream = self.generated.model_trained(algorithm=UNSET if algorithm is None else algorithm)
        return _subscribe(stream, lambda message: message.model_trained)


async def _subscribe(stream: AsyncIterator[M], pick: Callable[[M], E]) -> AsyncIterator[E]:
    """The events of a generated subscription, with the client's exceptions; the socket is
    closed when the caller stops iterating. A new subscription is one operation file in
    queries/subscriptions and one method that calls this."""
    generator = cast(AsyncGenerator[M, None], stream)
    try:
        with _translated():
            async for message in generator:
                yield pick(message)
    finally:
        await generator.aclose()


def _add(totals: _Totals, offset: int, errors: Sequence[UserErrorFields], *counts: int) -> None:
    totals.counts = [a + b for a, b in zip(totals.counts, counts, strict=True)]
    totals.errors.extend(_shift(errors, offset))
    totals.batches += 1
