"""Users: the ``User`` type with its event history, ``user`` query and user mutations."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

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
    key_time,
    own_id,
)
from gql.relay import to_global_id as gid
from storage.records import UserRecord
from storage.validation import check_id

if TYPE_CHECKING:
    from gql.types.interactions import Interaction

Info = strawberry.Info[Context, None]


@strawberry.type(description="Someone whose events you record and who gets recommendations.")
class User(Node):
    user_id: str = strawberry.field(description="Your id of the user.")
    attributes: JSON
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[int]

    @classmethod
    def of(cls, r: UserRecord) -> User:
        return cls(
            id=strawberry.ID(gid("User", r.external_id)),
            user_id=r.external_id,
            attributes=JSON(r.attributes),
            created_at=r.created_at,
            updated_at=r.updated_at,
            pk=r.pk,
        )

    @strawberry.field(description="The user's events, newest first.")
    async def interactions(
        self, info: Info, first: int = 20, after: str | None = None
    ) -> Connection[Annotated[Interaction, strawberry.lazy("gql.types.interactions")]]:
        from gql.types.interactions import Interaction

        ctx = info.context
        check_first(first, ctx.settings.max_page_size)
        key = decode_cursor(after, key_time, key_int) if after else None
        rows = await ctx.loaders.history.load((self.pk, first + 1, key))
        return connection(
            rows,
            first,
            lambda r: [r.occurred_at.isoformat(), r.pk],
            Interaction.of,
            after is not None,
        )


@strawberry.input
class UserInput:
    id: str = strawberry.field(description="Your id of the user.")
    attributes: JSON | None = strawberry.UNSET


@strawberry.input
class UserUpsertInput:
    user: UserInput


@strawberry.type
class UserUpsertPayload:
    user: User | None
    created: bool = False
    user_errors: list[UserError]


@strawberry.input
class UserDeleteInput:
    id: str = strawberry.field(description="Your user id or the user's global id.")


@strawberry.type
class UserDeletePayload:
    deleted_user_id: str | None
    user_errors: list[UserError]


@strawberry.type
class UserQueries:
    @strawberry.field(description="One user by your id or their global id.")
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        rec = await info.context.loaders.users_by_id.load(own_id(id, "User"))
        return User.of(rec) if rec else None


@strawberry.type
class UserMutations:
    @strawberry.mutation(description="Create a user or update their attributes.")
    async def user_upsert(self, info: Info, input: UserUpsertInput) -> UserUpsertPayload:
        ctx = info.context
        row: dict[str, object] = {"external_id": input.user.id}
        if input.user.attributes is not strawberry.UNSET:
            row["attributes"] = input.user.attributes or {}
        result = await ctx.store.catalog.upsert_users(ctx.tenant, [row], ("input", "users"))
        if result.errors or not result.records:
            return UserUpsertPayload(user=None, user_errors=one_row(result.errors, "user"))
        rec, created = result.records[0]
        return UserUpsertPayload(user=User.of(rec), created=created, user_errors=[])

    @strawberry.mutation(description="Delete a user and every event of theirs (GDPR erasure).")
    async def user_delete(self, info: Info, input: UserDeleteInput) -> UserDeletePayload:
        ctx = info.context
        ext = own_id(input.id, "User")
        if err := check_id(ext, ("input", "id"), ctx.store.limits):
            return UserDeletePayload(deleted_user_id=None, user_errors=user_errors([err]))
        deleted = await ctx.store.catalog.delete_users(ctx.tenant, [ext])
        await ctx.store.webhooks.forget_users(ctx.tenant, deleted)
        if not deleted:
            err = InputError(("input", "id"), f"unknown user {ext!r}", ErrorCode.NOT_FOUND)
            return UserDeletePayload(deleted_user_id=None, user_errors=user_errors([err]))
        return UserDeletePayload(deleted_user_id=deleted[0], user_errors=[])
