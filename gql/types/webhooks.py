"""Admin GraphQL for webhooks: register endpoints for event kinds, read the delivery log,
replay a delivery (the tenant is always the caller's own)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from engines.errors import ErrorCode, InputError
from gql.context import Context
from gql.errors import UserError, refused, user_errors
from gql.relay import Connection, check_first, connection, decode_cursor, key_int
from gql.server.webhooks import check_url
from storage.repositories.webhooks import DeliveryRecord, WebhookRecord
from storage.validation import check_id, unstorable

Info = strawberry.Info[Context, None]

#: webhooks per tenant (each change is written once per webhook that wants it)
MAX_WEBHOOKS = 20
#: users one webhook may watch for RECOMMENDATIONS_CHANGED
MAX_WATCHED_USERS = 1000
MAX_DESCRIPTION = 500


@strawberry.enum(description="What a webhook is told about.")
class WebhookKind(Enum):
    EVENTS_RECORDED = strawberry.enum_value(
        "events.recorded", description="Events were stored (up to 1,000 per delivery)."
    )
    MODEL_TRAINED = strawberry.enum_value(
        "model.trained", description="A new model version was trained and stored."
    )
    RECOMMENDATIONS_CHANGED = strawberry.enum_value(
        "recommendations.changed",
        description="The recommendations of a watched user (`watchUserIds`) changed.",
    )


@strawberry.enum(description="Where a delivery stands.")
class WebhookDeliveryStatus(Enum):
    PENDING = strawberry.enum_value("pending", description="Waiting for its (next) attempt.")
    DELIVERED = strawberry.enum_value("delivered", description="The endpoint answered 2xx.")
    DEAD = strawberry.enum_value(
        "dead", description="Every attempt failed; `webhookDeliveryReplay` queues it again."
    )


@strawberry.type(description="An endpoint of your tenant that receives signed event POSTs.")
class Webhook:
    id: strawberry.ID
    url: str
    kinds: list[WebhookKind]
    watch_user_ids: list[str] = strawberry.field(
        description="Users whose RECOMMENDATIONS_CHANGED this webhook receives."
    )
    active: bool = strawberry.field(
        description="Inactive webhooks get no new deliveries; pending ones wait for them."
    )
    description: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, r: WebhookRecord) -> Webhook:
        return cls(
            id=strawberry.ID(str(r.id)),
            url=r.url,
            kinds=[WebhookKind(k) for k in r.kinds],
            watch_user_ids=list(r.watch_user_ids),
            active=r.active,
            description=r.description,
            created_at=r.created_at,
            updated_at=r.updated_at,
        )


@strawberry.type(description="One message to one webhook, and how sending it went.")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="Sent as the `Recograph-Delivery` header.")
    webhook_id: strawberry.ID
    kind: WebhookKind
    status: WebhookDeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = strawberry.field(
        description="When the next attempt is due (pending deliveries only)."
    )
    last_status: int | None = strawberry.field(description="HTTP status of the last attempt.")
    last_error: str | None = strawberry.field(description="Why the last attempt failed.")
    payload: JSON = strawberry.field(description="The `data` of the POSTed body.")
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, r: DeliveryRecord) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(str(r.id)),
            webhook_id=strawberry.ID(str(r.webhook_id)),
            kind=WebhookKind(r.kind),
            status=WebhookDeliveryStatus(r.status),
            attempts=r.attempts,
            next_attempt_at=r.next_attempt_at if r.status == "pending" else None,
            last_status=r.last_status,
            last_error=r.last_error,
            payload=JSON(r.payload),
            created_at=r.created_at,
            delivered_at=r.delivered_at,
        )


@strawberry.input
class WebhookCreateInput:
    url: str = strawberry.field(
        description="An http(s) URL on a public address (see RECOGRAPH_WEBHOOK_ALLOW_PRIVATE)."
    )
    kinds: list[WebhookKind]
    watch_user_ids: list[str] = strawberry.field(
        default_factory=list,
        description="Users whose RECOMMENDATIONS_CHANGED the webhook receives.",
    )
    description: str | None = None


@strawberry.input
class WebhookUpdateInput:
    id: strawberry.ID
    url: str | None = strawberry.field(default=None, description="Left out or null: unchanged.")
    kinds: list[WebhookKind] | None = strawberry.field(
        default=None, description="Replaces the kinds; left out or null: unchanged."
    )
    watch_user_ids: list[str] | None = strawberry.field(
        default=None, description="Replaces the watched users; left out or null: unchanged."
    )
    active: bool | None = strawberry.field(default=None, description="Pause or resume.")
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="Left out: unchanged; null: removed."
    )


@strawberry.input
class WebhookDeleteInput:
    id: strawberry.ID


@strawberry.input
class WebhookDeliveryReplayInput:
    delivery_id: strawberry.ID


@strawberry.type
class WebhookCreatePayload:
    webhook: Webhook | None
    secret: str | None = strawberry.field(
        description="Signs every delivery (`Recograph-Signature`). Store it now; it cannot "
        "be shown again."
    )
    user_errors: list[UserError]


@strawberry.type
class WebhookUpdatePayload:
    webhook: Webhook | None
    user_errors: list[UserError]


@strawberry.type
class WebhookDeletePayload:
    deleted_id: strawberry.ID | None
    user_errors: list[UserError]


@strawberry.type
class WebhookDeliveryReplayPayload:
    delivery: WebhookDelivery | None
    user_errors: list[UserError]


def _value(member: Enum) -> str:
    return str(member.value)


def _pk(value: str) -> int | None:
    """A webhook or delivery id, or None when ``value`` cannot be one."""
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


async def _check(
    ctx: Context,
    url: str | None,
    kinds: list[WebhookKind] | None,
    watch_user_ids: list[str] | None,
    description: Any,
) -> list[InputError]:
    errors: list[InputError] = []
    if url is not None:
        if unstorable(url):
            why: str | None = "is not a URL"
        else:
            why = await check_url(url, ctx.settings.webhook_allow_private)
        if why:
            errors.append(InputError(("input", "url"), why, ErrorCode.INVALID))
    if kinds is not None and not kinds:
        errors.append(InputError(("input", "kinds"), "name at least one kind", ErrorCode.BLANK))
    if watch_user_ids is not None:
        field = ("input", "watchUserIds")
        if len(watch_user_ids) > MAX_WATCHED_USERS:
            errors.append(
                InputError(field, f"at most {MAX_WATCHED_USERS} users", ErrorCode.TOO_MANY)
            )
        else:
            errors.extend(
                e
                for i, user in enumerate(watch_user_ids)
                if (e := check_id(user, (*field, str(i)), ctx.store.limits)) is not None
            )
    if isinstance(description, str) and (
        len(description) > MAX_DESCRIPTION or unstorable(description)
    ):
        errors.append(
            InputError(
                ("input", "description"),
                f"at most {MAX_DESCRIPTION} storable characters",
                ErrorCode.TOO_LONG,
            )
        )
    return errors


def _not_found(field: tuple[str, ...], what: str, value: str) -> list[UserError]:
    return user_errors([InputError(field, f"no {what} {value!r}", ErrorCode.NOT_FOUND)])


@strawberry.type
class WebhookQueries:
    @strawberry.field(description="Your tenant's webhooks (admin scope).")
    async def webhooks(self, info: Info) -> list[Webhook]:
        ctx = info.context
        return [Webhook.of(w) for w in await ctx.store.webhooks.for_tenant(ctx.tenant)]

    @strawberry.field(
        description="The delivery log of your tenant's webhooks, newest first (admin scope)."
    )
    async def webhook_deliveries(
        self,
        info: Info,
        webhook_id: strawberry.ID | None = None,
        status: WebhookDeliveryStatus | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[WebhookDelivery]:
        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        webhook_pk = None
        if webhook_id is not None:
            webhook_pk = _pk(webhook_id)
            if webhook_pk is None:
                raise refused("`webhookId` is not a webhook id", "webhookId")
        before = decode_cursor(after, key_int)[0] if after else None
        rows = await ctx.store.webhooks.deliveries(
            ctx.tenant,
            webhook_id=webhook_pk,
            status=_value(status) if status is not None else None,
            limit=first + 1,
            before_id=before,
        )
        return connection(rows, first, lambda r: [r.id], WebhookDelivery.of, after is not None)


@strawberry.type
class WebhookMutations:
    @strawberry.mutation(
        description="Register a webhook for your tenant (admin scope). Its signing secret is "
        "returned once."
    )
    async def webhook_create(self, info: Info, input: WebhookCreateInput) -> WebhookCreatePayload:
        ctx = info.context
        errors = await _check(ctx, input.url, input.kinds, input.watch_user_ids, input.description)
        record = None
        if not errors:
            record = await ctx.store.webhooks.create(
                ctx.tenant,
                input.url,
                [_value(k) for k in input.kinds],
                input.watch_user_ids,
                input.description,
                limit=MAX_WEBHOOKS,
            )
            if record is None:
                errors.append(
                    InputError(("input",), f"at most {MAX_WEBHOOKS} webhooks", ErrorCode.TOO_MANY)
                )
        if errors or record is None:
            return WebhookCreatePayload(webhook=None, secret=None, user_errors=user_errors(errors))
        return WebhookCreatePayload(
            webhook=Webhook.of(record), secret=record.secret, user_errors=[]
        )

    @strawberry.mutation(description="Change one of your tenant's webhooks (admin scope).")
    async def webhook_update(self, info: Info, input: WebhookUpdateInput) -> WebhookUpdatePayload:
        ctx = info.context
        pk = _pk(input.id)
        if pk is None:
            return WebhookUpdatePayload(
                webhook=None, user_errors=_not_found(("input", "id"), "webhook", input.id)
            )
        errors = await _check(ctx, input.url, input.kinds, input.watch_user_ids, input.description)
        if errors:
            return WebhookUpdatePayload(webhook=None, user_errors=user_errors(errors))
        changes: dict[str, Any] = {}
        if input.url is not None:
            changes["url"] = input.url
        if input.kinds is not None:
            changes["kinds"] = [_value(k) for k in input.kinds]
        if input.watch_user_ids is not None:
            changes["watch_user_ids"] = input.watch_user_ids
        if input.active is not None:
            changes["active"] = input.active
        if input.description is not strawberry.UNSET:
            changes["description"] = input.description
        if changes:
            record = await ctx.store.webhooks.update(ctx.tenant, pk, **changes)
        else:
            record = await ctx.store.webhooks.get(ctx.tenant, pk)
        if record is None:
            return WebhookUpdatePayload(
                webhook=None, user_errors=_not_found(("input", "id"), "webhook", input.id)
            )
        return WebhookUpdatePayload(webhook=Webhook.of(record), user_errors=[])

    @strawberry.mutation(
        description="Delete one of your tenant's webhooks and its deliveries (admin scope)."
    )
    async def webhook_delete(self, info: Info, input: WebhookDeleteInput) -> WebhookDeletePayload:
        ctx = info.context
        pk = _pk(input.id)
        if pk is None or not await ctx.store.webhooks.delete(ctx.tenant, pk):
            return WebhookDeletePayload(
                deleted_id=None, user_errors=_not_found(("input", "id"), "webhook", input.id)
            )
        return WebhookDeletePayload(deleted_id=input.id, user_errors=[])

    @strawberry.mutation(
        description="Send a dead or delivered delivery again: it is queued as new, its "
        "attempts reset (admin scope)."
    )
    async def webhook_delivery_replay(
        self, info: Info, input: WebhookDeliveryReplayInput
    ) -> WebhookDeliveryReplayPayload:
        ctx = info.context
        field = ("input", "deliveryId")
        pk = _pk(input.delivery_id)
        record = await ctx.store.webhooks.replay(ctx.tenant, pk) if pk is not None else None
        if record is not None:
            return WebhookDeliveryReplayPayload(delivery=WebhookDelivery.of(record), user_errors=[])
        if pk is not None and await ctx.store.webhooks.delivery(ctx.tenant, pk) is not None:
            err = InputError(field, "the delivery is still pending", ErrorCode.INVALID)
            return WebhookDeliveryReplayPayload(delivery=None, user_errors=user_errors([err]))
        return WebhookDeliveryReplayPayload(
            delivery=None, user_errors=_not_found(field, "delivery", input.delivery_id)
        )
