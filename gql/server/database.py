"""Resolve where the database is: the configured server, or the embedded one started here."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator

from gql.server.settings import Settings
from storage.embedded import EmbeddedPostgres
from storage.online_state import OnlineLimits
from storage.store import Store
from storage.validation import Limits

log = logging.getLogger(__name__)


def limits_of(settings: Settings) -> Limits:
    from datetime import timedelta

    return Limits(
        max_id_length=settings.max_id_length,
        max_text_length=settings.max_text_length,
        max_attributes_bytes=settings.max_attributes_bytes,
        max_batch_size=settings.max_batch_size,
        future_tolerance=timedelta(seconds=settings.future_tolerance_seconds),
    )


async def open_store(settings: Settings) -> Store:
    if not settings.database_url:
        raise RuntimeError("no database URL: start the embedded server first (see gql.cli)")
    return await Store.open(
        settings.database_url,
        settings.redis_url,
        limits=limits_of(settings),
        auto_create_items=settings.auto_create_items,
        migrate=settings.run_migrations,
        keep_model_versions=settings.keep_model_versions,
        subscription_queue_size=settings.subscription_queue_size,
        result_cache_seconds=settings.recommendation_cache_seconds,
        page_seconds=settings.recommendation_page_seconds,
        impression_seconds=settings.impression_seconds,
        online_limits=OnlineLimits(
            history_size=settings.online_history_size,
            history_seconds=settings.online_history_seconds,
            together_minutes=settings.together_minutes,
            trending_half_life_hours=settings.trending_half_life_hours,
        ),
    )


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """Yield settings with a ``database_url``; an embedded server started for it is stopped
    on the way out, whatever ended the block."""
    if settings.database_url:
        yield settings
        return
    pg = EmbeddedPostgres(settings.data_dir)
    url = pg.start()
    try:
        # keys stay optional on the embedded default unless asked for explicitly
        yield settings.model_copy(
            update={"database_url": url, "require_api_key": settings.keys_required()}
        )
    finally:
        pg.stop()


@contextlib.asynccontextmanager
async def store_for(settings: Settings) -> AsyncIterator[Store]:
    store = await open_store(settings)
    try:
        yield store
    finally:
        await store.close()
