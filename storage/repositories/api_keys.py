"""API keys: created with a random secret shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.tables import API_KEYS
from storage.tenancy import tenant_scope

T = API_KEYS
SCOPES = ("admin", "write", "read", "recommend")
#: pub/sub channel of revocations: every replica forgets a revoked key at once
KEYS_CHANNEL = "keys"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: int
    tenant: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    revoked_at: datetime | None
    #: origins whose web pages may call the API with this key (CORS)
    allowed_origins: tuple[str, ...] = ()


def hash_key(secret: str) -> str:
    # Keys carry 256 random bits, so a fast hash is enough; no salt/KDF needed.
    return hashlib.sha256(secret.encode()).hexdigest()


def _record(r: Row[Any]) -> ApiKeyRecord:
    m = r._mapping
    return ApiKeyRecord(
        m["id"],
        m["tenant_id"],
        m["name"],
        m["prefix"],
        tuple(m["scopes"]),
        m["created_at"],
        m["revoked_at"],
        tuple(m["allowed_origins"]),
    )


class ApiKeyRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(
        self, tenant: str, name: str, scopes: list[str], allowed_origins: list[str] | None = None
    ) -> tuple[ApiKeyRecord, str]:
        unknown = set(scopes) - set(SCOPES)
        if unknown or not scopes:
            raise ValueError(f"scopes must be a non-empty subset of {', '.join(SCOPES)}")
        prefix = secrets.token_hex(4)
        secret = f"rg_{prefix}_{secrets.token_urlsafe(32)}"
        stmt = (
            T.insert()
            .values(
                tenant_id=tenant,
                name=name,
                prefix=prefix,
                key_hash=hash_key(secret),
                scopes=sorted(set(scopes)),
                allowed_origins=sorted(set(allowed_origins or [])),
            )
            .returning(*T.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).one()
        return _record(row), secret

    async def verify(self, secret: str) -> ApiKeyRecord | None:
        """The active key with this secret, of any tenant (so it runs outside tenants)."""
        stmt = select(T).where(T.c.key_hash == hash_key(secret), T.c.revoked_at.is_(None))
        with tenant_scope(None):
            async with self.engine.connect() as conn:
                row = (await conn.execute(stmt)).first()
        return _record(row) if row is not None else None

    async def active_prefixes(self) -> set[str]:
        """Prefixes of every tenant's active keys (not secrets: they only say a key may
        exist, so that obviously unknown keys cost no lookup)."""
        with tenant_scope(None):
            async with self.engine.connect() as conn:
                rows = await conn.execute(select(T.c.prefix).where(T.c.revoked_at.is_(None)))
                return set(rows.scalars())

    async def all_allowed_origins(self) -> set[str]:
        """Origins any tenant's active key allows (a CORS preflight carries no key, so it is
        answered for the union; the request itself is checked against its key's own list)."""
        stmt = select(func.unnest(T.c.allowed_origins)).where(T.c.revoked_at.is_(None))
        with tenant_scope(None):
            async with self.engine.connect() as conn:
                return set((await conn.execute(stmt)).scalars())

    async def set_origins(
        self, tenant: str, prefix: str, origins: list[str]
    ) -> ApiKeyRecord | None:
        """Replace the origins of the tenant's active key ``prefix``; None if there is none."""
        stmt = (
            update(T)
            .where(T.c.tenant_id == tenant, T.c.prefix == prefix, T.c.revoked_at.is_(None))
            .values(allowed_origins=sorted(set(origins)))
            .returning(*T.c)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return _record(row) if row is not None else None

    async def list(self, tenant: str) -> list[ApiKeyRecord]:
        stmt = select(T).where(T.c.tenant_id == tenant).order_by(T.c.id)
        async with self.engine.connect() as conn:
            return [_record(r) for r in (await conn.execute(stmt)).all()]

    async def revoke(self, tenant: str, prefix: str) -> int | None:
        """Revoke the tenant's active key with ``prefix``; its id, or None if none."""
        stmt = (
            update(T)
            .where(T.c.tenant_id == tenant, T.c.prefix == prefix, T.c.revoked_at.is_(None))
            .values(revoked_at=func.now())
            .returning(T.c.id)
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(stmt)).first()
        return int(row.id) if row is not None else None
