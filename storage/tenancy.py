"""The tenant of the work in progress, enforced by PostgreSQL row-level security.

``tenant_scope(t)`` marks the current task (and the tasks it starts) as working for tenant
``t``; every transaction begun inside then runs as the role ``recograph_tenant`` with
``recograph.tenant = t``, so the policies of migration 0003 hide other tenants' rows even
from a query that forgot its ``tenant_id`` condition. Work outside any scope (migrations,
API key lookup, tenant listing) runs with the connection's own role.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

CURRENT_TENANT: ContextVar[str | None] = ContextVar("recograph_tenant", default=None)


@contextlib.contextmanager
def tenant_scope(tenant: str | None) -> Iterator[None]:
    """Work for ``tenant`` (None: outside any tenant, e.g. to look up an API key)."""
    token = CURRENT_TENANT.set(tenant)
    try:
        yield
    finally:
        CURRENT_TENANT.reset(token)


def set_tenant(tenant: str | None) -> None:
    """Mark the current task as working for ``tenant`` (for the rest of the task)."""
    CURRENT_TENANT.set(tenant or None)


def _on_begin(conn: Connection) -> None:
    tenant = CURRENT_TENANT.get()
    if tenant is None:
        return
    # one round trip; both settings end with the transaction
    conn.exec_driver_sql(
        "SELECT set_config('role', 'recograph_tenant', true), "
        "set_config('recograph.tenant', $1, true)",
        (tenant,),
    )


def enforce_row_level_security(engine: AsyncEngine) -> None:
    event.listen(engine.sync_engine, "begin", _on_begin)
