"""PostgreSQL row-level security is a second wall: inside a tenant's scope even a query
without any tenant condition sees and writes only that tenant's rows."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storage.tenancy import tenant_scope


async def test_queries_in_a_tenant_scope_cannot_see_or_write_other_tenants(store):
    for tenant in ("acme", "globex"):
        await store.ensure_tenant(tenant)
        await store.catalog.upsert_items(tenant, [{"external_id": f"{tenant}-item"}], ("x",))

    async with store.engine.connect() as conn:  # no scope: the service's own role
        everyone = (await conn.execute(text("SELECT external_id FROM items"))).scalars().all()
    assert set(everyone) == {"acme-item", "globex-item"}

    with tenant_scope("acme"):
        async with store.engine.connect() as conn:
            seen = (await conn.execute(text("SELECT external_id FROM items"))).scalars().all()
            role = (await conn.execute(text("SELECT current_user"))).scalar_one()
        assert seen == ["acme-item"]
        assert role == "recograph_tenant"
        with pytest.raises(DBAPIError, match="row-level security"):
            async with store.engine.begin() as conn:
                await conn.execute(text(
                    "INSERT INTO items (tenant_id, external_id) VALUES ('globex', 'smuggled')"))
        async with store.engine.begin() as conn:
            changed = await conn.execute(text("UPDATE items SET title = 'hacked'"))
        assert changed.rowcount == 1  # only acme's own row
        # the repositories work unchanged inside a scope
        assert set(await store.items.pks("acme", ["acme-item"])) == {"acme-item"}
        assert await store.items.pks("globex", ["globex-item"]) == {}

    globex = await store.items.by_external_ids("globex", ["globex-item"])
    assert globex["globex-item"].title is None


async def test_training_reads_its_events_behind_the_same_wall(store):
    """Training reads a tenant's events by one binary COPY on the raw connection: it must
    still run as the tenant, so a mix-up of tenant names reads nothing, not another
    tenant's events."""
    from storage.engine_storage import StoreEngineStorage
    from storage.events import EventInput

    events = StoreEngineStorage(store)
    for tenant in ("acme", "globex"):
        await store.ensure_tenant(tenant)
        await store.catalog.upsert_items(tenant, [{"external_id": f"{tenant}-item"}], ("x",))
        recorded = await store.events.record(
            tenant, [EventInput(user_id=f"{tenant}-user", item_id=f"{tenant}-item", type="view")],
            ("x",))
        assert recorded.recorded == 1
    with tenant_scope("acme"):
        users, items, weights, times = await events.training_events("acme")
        assert len(users) == len(items) == len(weights) == len(times) == 1
        assert len((await events.training_events("globex"))[0]) == 0
