"""``node(id:)``: any object by its global id (Relay)."""

from __future__ import annotations

import strawberry

from gql.context import Context
from gql.relay import Node, from_global_id
from gql.types.interactions import Interaction
from gql.types.items import Item
from gql.types.users import User

Info = strawberry.Info[Context, None]


@strawberry.type
class NodeQueries:
    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        decoded = from_global_id(id)
        if decoded is None:
            return None
        kind, key = decoded
        loaders = info.context.loaders
        if kind == "Item":
            item = await loaders.items_by_id.load(key)
            return Item.of(item) if item else None
        if kind == "User":
            user = await loaders.users_by_id.load(key)
            return User.of(user) if user else None
        if kind == "Interaction" and key.isdigit() and len(key) < 19:
            event = await loaders.interactions_by_pk.load(int(key))
            return Interaction.of(event) if event else None
        return None
