"""Writing a tenant's items, users or events as JSON lines that the importer reads back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, TextIO

from storage.store import Store


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


async def _rows(store: Store, tenant: str, kind: str) -> AsyncIterator[dict[str, Any]]:
    if kind == "items":
        async for item in store.items.iterate(tenant):
            yield {
                "id": item.external_id,
                "entity_type": item.entity_type,
                "title": item.title,
                "text": item.text,
                "categories": item.categories,
                "tags": item.tags,
                "attributes": item.attributes,
                "hidden": item.hidden,
            }
    elif kind == "users":
        async for user in store.users.iterate(tenant):
            yield {"id": user.external_id, "attributes": user.attributes}
    else:
        async for event in store.interactions.iterate_export(tenant):
            event.pop("id")
            event["timestamp"] = event.pop("occurred_at")
            yield event


async def export(store: Store, tenant: str, kind: str, output: TextIO) -> int:
    """Write ``kind`` (items, users or interactions) to ``output``; the number of rows."""
    count = 0
    async for row in _rows(store, tenant, kind):
        output.write(json.dumps(row, default=_json_default) + "\n")
        count += 1
    return count
