"""Admin GraphQL for API keys (the tenant is always the caller's own)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum

import strawberry

from engines.errors import ErrorCode, InputError
from gql.context import Context
from gql.errors import UserError, user_errors
from gql.server.auth import mint_user_token
from gql.server.cors import normalise_origin
from storage.repositories.api_keys import ApiKeyRecord
from storage.validation import check_id, unstorable

Info = strawberry.Info[Context, None]


@strawberry.enum(description="What a key may do.")
class ApiKeyScope(Enum):
    ADMIN = "admin"
    WRITE = "write"
    READ = "read"
    RECOMMEND = "recommend"


@strawberry.type(description="An API key of your tenant (the secret is shown only once).")
class ApiKey:
    name: str
    prefix: str = strawberry.field(description="Identifies the key; not a secret.")
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None
    allowed_origins: list[str] = strawberry.field(
        description="Origins (`https://shop.example`, or `*`) whose web pages may call the "
        "API with this key (CORS). Empty: none; server-side callers send no origin."
    )

    @classmethod
    def of(cls, r: ApiKeyRecord) -> ApiKey:
        return cls(
            name=r.name,
            prefix=r.prefix,
            scopes=list(r.scopes),
            created_at=r.created_at,
            revoked_at=r.revoked_at,
            allowed_origins=list(r.allowed_origins),
        )


MAX_ORIGINS = 50
ORIGINS_HELP = "Origins whose web pages may use the key, e.g. `https://shop.example`."


def check_origins(origins: list[str], field: tuple[str, ...]) -> tuple[list[str], list[InputError]]:
    """The origins normalised as browsers send them, and what is wrong with any of them."""
    if len(origins) > MAX_ORIGINS:
        return [], [InputError(field, f"at most {MAX_ORIGINS} origins", ErrorCode.INVALID)]
    clean, errors = [], []
    for i, origin in enumerate(origins):
        try:
            clean.append(normalise_origin(origin))
        except ValueError as exc:
            errors.append(InputError((*field, str(i)), str(exc), ErrorCode.INVALID))
    return clean, errors


@strawberry.input
class ApiKeyCreateInput:
    name: str
    scopes: list[ApiKeyScope]
    allowed_origins: list[str] = strawberry.field(default_factory=list, description=ORIGINS_HELP)


@strawberry.input
class ApiKeyUpdateInput:
    prefix: str
    allowed_origins: list[str] = strawberry.field(
        description=f"{ORIGINS_HELP} Replaces the key's list; `[]` allows none."
    )


@strawberry.type
class ApiKeyUpdatePayload:
    api_key: ApiKey | None
    user_errors: list[UserError]


@strawberry.type
class ApiKeyCreatePayload:
    api_key: ApiKey | None
    secret: str | None = strawberry.field(description="Store it now; it cannot be shown again.")
    user_errors: list[UserError]


@strawberry.input
class ApiKeyRevokeInput:
    prefix: str


@strawberry.type
class ApiKeyRevokePayload:
    revoked_prefix: str | None
    user_errors: list[UserError]


@strawberry.input
class UserTokenCreateInput:
    user_id: str = strawberry.field(description="The user the token lets a browser key act for.")
    ttl_seconds: int = strawberry.field(
        default=3600, description="How long the token is valid (60 s to 30 days)."
    )


@strawberry.type
class UserTokenCreatePayload:
    token: str | None = strawberry.field(
        description="Send it as `X-User-Token` (or `userToken` in connection_init)."
    )
    expires_at: datetime | None
    user_errors: list[UserError]


@strawberry.type
class KeyQueries:
    @strawberry.field(description="Your tenant's API keys (admin scope).")
    async def api_keys(self, info: Info) -> list[ApiKey]:
        ctx = info.context
        return [ApiKey.of(k) for k in await ctx.store.api_keys.list(ctx.tenant)]


@strawberry.type
class KeyMutations:
    @strawberry.mutation(description="Create an API key for your tenant (admin scope).")
    async def api_key_create(self, info: Info, input: ApiKeyCreateInput) -> ApiKeyCreatePayload:
        ctx = info.context
        if (
            not input.name.strip()
            or len(input.name) > 200
            or not input.scopes
            or unstorable(input.name)
        ):
            err = InputError(
                ("input",), "give a name (1..200 characters) and scopes", ErrorCode.INVALID
            )
            return ApiKeyCreatePayload(api_key=None, secret=None, user_errors=user_errors([err]))
        origins, errors = check_origins(input.allowed_origins, ("input", "allowedOrigins"))
        if errors:
            return ApiKeyCreatePayload(api_key=None, secret=None, user_errors=user_errors(errors))
        record, secret = await ctx.store.api_keys.create(
            ctx.tenant, input.name, [s.value for s in input.scopes], origins
        )
        return ApiKeyCreatePayload(api_key=ApiKey.of(record), secret=secret, user_errors=[])

    @strawberry.mutation(
        description="Change which web pages may use one of your tenant's keys (admin scope)."
    )
    async def api_key_update(self, info: Info, input: ApiKeyUpdateInput) -> ApiKeyUpdatePayload:
        ctx = info.context
        origins, errors = check_origins(input.allowed_origins, ("input", "allowedOrigins"))
        if errors:
            return ApiKeyUpdatePayload(api_key=None, user_errors=user_errors(errors))
        record = None
        if not unstorable(input.prefix):
            record = await ctx.store.set_api_key_origins(ctx.tenant, input.prefix, origins)
        if record is None:
            err = InputError(
                ("input", "prefix"), f"no active key {input.prefix!r}", ErrorCode.NOT_FOUND
            )
            return ApiKeyUpdatePayload(api_key=None, user_errors=user_errors([err]))
        return ApiKeyUpdatePayload(api_key=ApiKey.of(record), user_errors=[])

    @strawberry.mutation(description="Revoke one of your tenant's keys (admin scope).")
    async def api_key_revoke(self, info: Info, input: ApiKeyRevokeInput) -> ApiKeyRevokePayload:
        ctx = info.context
        if unstorable(input.prefix) or not await ctx.store.revoke_api_key(ctx.tenant, input.prefix):
            err = InputError(
                ("input", "prefix"), f"no active key {input.prefix!r}", ErrorCode.NOT_FOUND
            )
            return ApiKeyRevokePayload(revoked_prefix=None, user_errors=user_errors([err]))
        return ApiKeyRevokePayload(revoked_prefix=input.prefix, user_errors=[])

    @strawberry.mutation(
        description="A signed, short-lived token that lets a browser-safe `recommend` key "
        "fetch recommendations for this one user (write scope: call it from your backend)."
    )
    async def user_token_create(
        self, info: Info, input: UserTokenCreateInput
    ) -> UserTokenCreatePayload:
        ctx = info.context
        errs = [
            e
            for e in (
                check_id(input.user_id, ("input", "userId"), ctx.store.limits),
                None
                if 60 <= input.ttl_seconds <= 30 * 86_400
                else InputError(
                    ("input", "ttlSeconds"), "must be 60 to 2592000 seconds", ErrorCode.INVALID
                ),
            )
            if e is not None
        ]
        if errs:
            return UserTokenCreatePayload(
                token=None, expires_at=None, user_errors=user_errors(errs)
            )
        secret = await ctx.store.tenant_secret(ctx.tenant)
        token, expires = mint_user_token(secret, input.user_id, input.ttl_seconds)
        return UserTokenCreatePayload(
            token=token, expires_at=datetime.fromtimestamp(expires, UTC), user_errors=[]
        )
