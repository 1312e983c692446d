"""Interactions: the event type, recording mutations, interaction types and live events."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from engines.errors import ErrorCode, InputError
from gql.context import Context, drop_slow_consumer
from gql.errors import UserError, one_row, refused, user_errors
from gql.relay import Node
from gql.relay import to_global_id as gid
from gql.server.auth import forbid_other_users
from gql.types.flat_inputs import flat_input
from gql.types.items import Item
from gql.types.users import User
from storage.backends import SlowConsumer
from storage.events import EventInput, decode_events, events_channel
from storage.records import InteractionRecord, InteractionTypeRecord
from storage.validation import check_finite, check_id, check_text

Info = strawberry.Info[Context, None]


@strawberry.type(description="One event: a user did something with an item.")
class Interaction(Node):
    type: str
    weight: float = strawberry.field(description="How much the event counts, after type rules.")
    value: float | None = strawberry.field(description="E.g. the rating given.")
    timestamp: datetime
    metadata: JSON
    idempotency_key: str | None
    recommendation_id: str | None = strawberry.field(
        description="The served list this event answers (attribution)."
    )
    user_pk: strawberry.Private[int]
    item_pk: strawberry.Private[int]

    @classmethod
    def of(cls, r: InteractionRecord) -> Interaction:
        return cls(
            id=strawberry.ID(gid("Interaction", str(r.pk))),
            type=r.type,
            weight=r.weight,
            value=r.value,
            timestamp=r.occurred_at,
            metadata=JSON(r.metadata),
            idempotency_key=r.idempotency_key,
            recommendation_id=r.recommendation_id,
            user_pk=r.user_pk,
            item_pk=r.item_pk,
        )

    @strawberry.field
    async def item(self, info: Info) -> Item | None:
        rec = await info.context.loaders.items_by_pk.load(self.item_pk)
        return Item.of(rec) if rec else None

    @strawberry.field
    async def user(self, info: Info) -> User | None:
        rec = await info.context.loaders.users_by_pk.load(self.user_pk)
        return User.of(rec) if rec else None


@strawberry.enum
class Polarity(Enum):
    POSITIVE = "positive"
    NEGATIVE = "negative"
    BY_VALUE = "by_value"


@strawberry.type(description="A kind of event and how much it says about taste.")
class InteractionType:
    name: str
    weight: float = strawberry.field(
        description="Weight of one event; for value-based types, the factor on the value."
    )
    value_based: bool = strawberry.field(
        description="Weight is `weight * (value - neutralValue)`, e.g. ratings."
    )
    neutral_value: float
    description: str | None

    @strawberry.field
    def polarity(self) -> Polarity:
        if self.value_based:
            return Polarity.BY_VALUE
        return Polarity.NEGATIVE if self.weight < 0 else Polarity.POSITIVE

    @classmethod
    def of(cls, r: InteractionTypeRecord) -> InteractionType:
        return cls(
            name=r.name,
            weight=r.weight,
            value_based=r.value_based,
            neutral_value=r.neutral_value,
            description=r.description,
        )


@flat_input
@strawberry.input(description="One event. Users are created on their first event.")
class InteractionInput:
    user_id: str
    item_id: str
    type: str = strawberry.field(description="An interaction type name, e.g. `purchase`.")
    weight: float | None = strawberry.field(
        default=None, description="Overrides the weight the type gives."
    )
    value: float | None = strawberry.field(default=None, description="E.g. a rating.")
    timestamp: datetime | None = strawberry.field(
        default=None, description="When it happened (ISO 8601 with offset); default now."
    )
    metadata: JSON | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Resending an event with a stored key records nothing."
    )
    recommendation_id: str | None = strawberry.field(
        default=None,
        description="The `recommendationId` of the list the user acted on: attributes the "
        "event to that list (and to its experiment's variant).",
    )

    def to_event(self) -> EventInput:
        return EventInput(
            user_id=self.user_id,
            item_id=self.item_id,
            type=self.type,
            weight=self.weight,
            value=self.value,
            timestamp=self.timestamp,
            metadata=cast(Any, self.metadata),  # the recorder refuses what is not an object
            idempotency_key=self.idempotency_key,
            recommendation_id=self.recommendation_id,
        )


@strawberry.input
class InteractionRecordInput:
    interaction: InteractionInput


@strawberry.input
class InteractionsRecordInput:
    interactions: list[InteractionInput]


@strawberry.type
class InteractionsRecordPayload:
    recorded_count: int = strawberry.field(description="Events stored by this call.")
    duplicate_count: int = strawberry.field(
        description="Events skipped because their idempotency key was already stored."
    )
    user_errors: list[UserError] = strawberry.field(
        description="Events refused; the others were stored."
    )


@strawberry.input
class InteractionTypeUpsertInput:
    name: str
    weight: float
    value_based: bool = False
    neutral_value: float = 0.0
    description: str | None = None


@strawberry.type
class InteractionTypeUpsertPayload:
    interaction_type: InteractionType | None
    user_errors: list[UserError]


@strawberry.type(description="An event as it is recorded, pushed to subscribers.")
class InteractionEvent:
    user_id: str
    item_id: str
    type: str
    weight: float
    value: float | None
    timestamp: datetime


async def _record(info: Info, events: list[EventInput], one: bool) -> InteractionsRecordPayload:
    ctx = info.context
    path = ("input", "interactions")
    if one:  # written together with other requests' single events: one commit for all
        result = await ctx.store.events.record_one(ctx.tenant, events[0], path)
    else:
        result = await ctx.store.events.record(ctx.tenant, events, path)
    return InteractionsRecordPayload(
        recorded_count=result.recorded,
        duplicate_count=result.duplicates,
        user_errors=one_row(result.errors, "interaction") if one else user_errors(result.errors),
    )


@strawberry.type
class InteractionQueries:
    @strawberry.field(description="The kinds of events this tenant records.")
    async def interaction_types(self, info: Info) -> list[InteractionType]:
        ctx = info.context
        types = await ctx.store.interaction_types.all(ctx.tenant)
        return [InteractionType.of(t) for t in types.values()]


@strawberry.type
class InteractionMutations:
    @strawberry.mutation(description="Record one event.")
    async def interaction_record(
        self, info: Info, input: InteractionRecordInput
    ) -> InteractionsRecordPayload:
        return await _record(info, [input.interaction.to_event()], one=True)

    @strawberry.mutation(description="Record many events in one transaction.")
    async def interactions_record(
        self, info: Info, input: InteractionsRecordInput
    ) -> InteractionsRecordPayload:
        events = [i.to_event() for i in input.interactions]
        return await _record(info, events, one=False)

    @strawberry.mutation(description="Define an interaction type or change its weight.")
    async def interaction_type_upsert(
        self, info: Info, input: InteractionTypeUpsertInput
    ) -> InteractionTypeUpsertPayload:
        ctx = info.context
        checks = [
            check_id(input.name, ("input", "name"), ctx.store.limits),
            check_text(input.description, ("input", "description"), ctx.store.limits),
            check_finite(input.weight, ("input", "weight")),
            check_finite(input.neutral_value, ("input", "neutralValue")),
        ]
        if input.weight == 0 and not input.value_based:
            checks.append(InputError(("input", "weight"), "must not be zero", ErrorCode.INVALID))
        errs = [c for c in checks if c is not None]
        if errs:
            return InteractionTypeUpsertPayload(
                interaction_type=None, user_errors=user_errors(errs)
            )
        rec = InteractionTypeRecord(
            name=input.name,
            weight=input.weight,
            value_based=input.value_based,
            neutral_value=input.neutral_value,
            description=input.description,
        )
        await ctx.store.interaction_types.upsert(ctx.tenant, rec)
        return InteractionTypeUpsertPayload(
            interaction_type=InteractionType.of(rec), user_errors=[]
        )


@strawberry.input(description="Which events to follow; every list left out matches any.")
class InteractionEventFilter:
    user_ids: list[str] | None = None
    item_ids: list[str] | None = None
    types: list[str] | None = None


#: most ids or types one filter may list
MAX_FILTER_VALUES = 1000


def _wanted(values: list[str] | None, field: str) -> frozenset[str] | None:
    if values is None:
        return None
    if len(values) > MAX_FILTER_VALUES:
        raise refused(f"at most {MAX_FILTER_VALUES} values", f"filter.{field}")
    return frozenset(values)


@strawberry.type
class InteractionSubscriptions:
    @strawberry.subscription(
        description="Events as they are recorded, on any replica, optionally only of some "
        "users, items or types. A browser-safe `recommend` key with a user token may follow "
        "its own user's events (to refresh that user's recommendations)."
    )
    async def interaction_recorded(
        self,
        info: Info,
        user_id: str | None = None,
        filter: InteractionEventFilter | None = None,
    ) -> AsyncGenerator[InteractionEvent, None]:
        ctx = info.context
        filter = filter or InteractionEventFilter()
        users = _wanted(filter.user_ids, "userIds")
        if user_id is not None:
            users = frozenset({user_id}) if users is None else users & {user_id}
        items, types = _wanted(filter.item_ids, "itemIds"), _wanted(filter.types, "types")
        only = next(iter(users)) if users is not None and len(users) == 1 else ""
        if (reason := forbid_other_users(ctx.auth, only)) is not None:
            raise refused(reason, "userId", ErrorCode.FORBIDDEN)
        try:
            async for raw in ctx.store.cache.subscribe(events_channel(ctx.tenant)):
                for e in decode_events(raw):
                    if (
                        (users is not None and e.user not in users)
                        or (items is not None and e.item not in items)
                        or (types is not None and e.type not in types)
                    ):
                        continue
                    yield InteractionEvent(
                        user_id=e.user,
                        item_id=e.item,
                        type=e.type,
                        weight=e.weight,
                        value=e.value,
                        timestamp=datetime.fromtimestamp(e.timestamp, UTC),
                    )
        except SlowConsumer:
            await drop_slow_consumer(ctx)
