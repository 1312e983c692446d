"""Items: the catalogue, by external id, with pages filtered by item rules."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from engines.serving.rules import ItemRules
from storage.filters import item_conditions
from storage.records import ItemRecord
from storage.repositories.directory import Directory
from storage.tables import ITEMS


class ItemRepository(Directory[ItemRecord]):
    table = ITEMS
    writable = ("entity_type", "title", "text", "categories", "tags", "attributes", "hidden")

    @staticmethod
    def record(row: Row[Any]) -> ItemRecord:
        m = row._mapping
        return ItemRecord(
            pk=m["id"],
            external_id=m["external_id"],
            entity_type=m["entity_type"],
            title=m["title"],
            text=m["text"],
            categories=list(m["categories"]),
            tags=list(m["tags"]),
            attributes=m["attributes"],
            hidden=m["hidden"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )

    async def matching(
        self, tenant: str, rules: ItemRules, limit: int, after_pk: int | None = None
    ) -> list[ItemRecord]:
        """A page of the items ``rules`` allow, in insertion order."""
        return await self.page(tenant, limit, after_pk, item_conditions(tenant, rules))
