"""Alembic environment: runs on the connection handed over by ``upgrade_database`` or, from
the ``alembic`` command line, on a fresh async engine built from ``DATABASE_URL``."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from storage.tables import metadata

config = context.config


def run_on(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def run_standalone() -> None:
    from storage.database import make_engine

    engine = make_engine(os.environ["DATABASE_URL"])
    async with engine.connect() as conn:
        await conn.run_sync(run_on)
        await conn.commit()
    await engine.dispose()


existing = config.attributes.get("connection")
if existing is not None:
    run_on(existing)
else:
    asyncio.run(run_standalone())
