"""Items: the ``Item`` type, its inputs, the ``item``/``items`` queries and item mutations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON

from engines.errors import ErrorCode, InputError
from gql.context import Context
from gql.errors import UserError, one_row, user_errors
from gql.relay import (
    Connection,
    Node,
    check_first,
    connection,
    decode_cursor,
    key_int,
    own_id,
)
from gql.relay import to_global_id as gid
from gql.types.filters import ItemFilterInput, rules_of
from gql.types.flat_inputs import flat_input
from gql.types.vector import Vector
from storage.records import ItemRecord
from storage.validation import check_id

Info = strawberry.Info[Context, None]


@strawberry.type(description="Something that can be recommended: a product, article, movie...")
class Item(Node):
    item_id: str = strawberry.field(description="Your id of the item.")
    entity_type: str = strawberry.field(description="Kind of item, e.g. `product`, `movie`.")
    title: str | None
    text: str | None = strawberry.field(description="Free text describing the item.")
    categories: list[str]
    tags: list[str]
    attributes: JSON = strawberry.field(description="Any JSON object, e.g. price or brand.")
    hidden: bool = strawberry.field(description="Hidden items are never recommended.")
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[int]

    @classmethod
    def of(cls, r: ItemRecord) -> Item:
        return cls(
            id=strawberry.ID(gid("Item", r.external_id)),
            item_id=r.external_id,
            entity_type=r.entity_type,
            title=r.title,
            text=r.text,
            categories=r.categories,
            tags=r.tags,
            attributes=JSON(r.attributes),
            hidden=r.hidden,
            created_at=r.created_at,
            updated_at=r.updated_at,
            pk=r.pk,
        )


@flat_input
@strawberry.input(description="An item to create or update. Omitted fields keep their value.")
class ItemInput:
    id: str = strawberry.field(description="Your id of the item.")
    entity_type: str | None = strawberry.UNSET
    title: str | None = strawberry.UNSET
    text: str | None = strawberry.UNSET
    categories: list[str] | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    attributes: JSON | None = strawberry.UNSET
    hidden: bool | None = strawberry.UNSET
    embedding: Vector | None = strawberry.field(
        default=strawberry.UNSET, description="Your own embedding of the item (optional)."
    )

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"external_id": self.id}
        defaults: dict[str, Any] = {
            "entity_type": "item",
            "title": None,
            "text": None,
            "categories": [],
            "tags": [],
            "attributes": {},
            "hidden": False,
            "embedding": None,
        }
        for name, default in defaults.items():
            value = getattr(self, name)
            if value is not strawberry.UNSET:
                row[name] = default if value is None else value
        return row


@strawberry.input
class ItemUpsertInput:
    item: ItemInput


@strawberry.type
class ItemUpsertPayload:
    item: Item | None
    created: bool = False
    user_errors: list[UserError]


@strawberry.input
class ItemsBulkUpsertInput:
    items: list[ItemInput] = strawberry.field(description="Up to the configured batch size.")


@strawberry.type
class ItemsBulkUpsertPayload:
    upserted_count: int = strawberry.field(description="Items created or updated.")
    created_count: int
    user_errors: list[UserError] = strawberry.field(
        description="Rows refused; the others were written."
    )


@strawberry.input
class ItemDeleteInput:
    id: str = strawberry.field(description="Your item id or the item's global id.")


@strawberry.type
class ItemDeletePayload:
    deleted_item_id: str | None
    user_errors: list[UserError]


@strawberry.type
class ItemQueries:
    @strawberry.field(description="One item by your id or its global id.")
    async def item(self, info: Info, id: strawberry.ID) -> Item | None:
        rec = await info.context.loaders.items_by_id.load(own_id(id, "Item"))
        return Item.of(rec) if rec else None

    @strawberry.field(description="Items in the order they were first stored.")
    async def items(
        self,
        info: Info,
        filter: ItemFilterInput | None = None,
        first: int = 20,
        after: str | None = None,
    ) -> Connection[Item]:
        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        after_pk = decode_cursor(after, key_int)[0] if after else None
        rules = rules_of(filter or ItemFilterInput(), ctx.settings.max_batch_size)
        rows = await ctx.store.items.matching(ctx.tenant, rules, first + 1, after_pk)
        for r in rows:
            ctx.loaders.items_by_pk.prime(r.pk, r)
        return connection(rows, first, lambda r: [r.pk], Item.of, after is not None)


@strawberry.type
class ItemMutations:
    @strawberry.mutation(description="Create an item or update the fields you send.")
    async def item_upsert(self, info: Info, input: ItemUpsertInput) -> ItemUpsertPayload:
        ctx = info.context
        result = await ctx.store.catalog.upsert_items(
            ctx.tenant, [input.item.to_row()], ("input", "items")
        )
        if result.records:
            ctx.engine.items_changed(ctx.tenant)
        if result.errors or not result.records:
            return ItemUpsertPayload(item=None, user_errors=one_row(result.errors, "item"))
        rec, created = result.records[0]
        return ItemUpsertPayload(item=Item.of(rec), created=created, user_errors=[])

    @strawberry.mutation(description="Create or update many items in one call.")
    async def items_bulk_upsert(
        self, info: Info, input: ItemsBulkUpsertInput
    ) -> ItemsBulkUpsertPayload:
        ctx = info.context
        result = await ctx.store.catalog.upsert_items(
            ctx.tenant, [i.to_row() for i in input.items], ("input", "items")
        )
        ctx.engine.items_changed(ctx.tenant)
        return ItemsBulkUpsertPayload(
            upserted_count=len(result.records),
            created_count=sum(1 for _, created in result.records if created),
            user_errors=user_errors(result.errors),
        )

    @strawberry.mutation(description="Delete an item and the events that refer to it.")
    async def item_delete(self, info: Info, input: ItemDeleteInput) -> ItemDeletePayload:
        ctx = info.context
        ext = own_id(input.id, "Item")
        if err := check_id(ext, ("input", "id"), ctx.store.limits):
            return ItemDeletePayload(deleted_item_id=None, user_errors=user_errors([err]))
        deleted = await ctx.store.catalog.delete_items(ctx.tenant, [ext])
        ctx.engine.items_changed(ctx.tenant)
        if not deleted:
            err = InputError(("input", "id"), f"unknown item {ext!r}", ErrorCode.NOT_FOUND)
            return ItemDeletePayload(deleted_item_id=None, user_errors=user_errors([err]))
        return ItemDeletePayload(deleted_item_id=deleted[0], user_errors=[])
