"""Writes to the catalogue (items) and the user directory, validated row by row.

A bulk call writes every valid row and reports the invalid ones; a row's errors name its
index (``items.3.id``) so a client can fix and resend exactly those.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from engines.errors import ErrorCode, InputError
from storage.impressions import ImpressionStore
from storage.online_state import OnlineState
from storage.records import ItemRecord, UserRecord
from storage.repositories import ItemRepository, UserRepository, VectorRepository
from storage.repositories.vectors import DimensionMismatch
from storage.snapshot import CatalogSnapshots
from storage.validation import (
    Limits,
    Path,
    check_batch,
    check_embedding,
    check_id,
    check_json_object,
    check_labels,
    check_text,
)

R = TypeVar("R")
INPUT_SPACE = "input"  # vector space of embeddings supplied by clients


@dataclass(slots=True)
class WriteResult(Generic[R]):
    records: list[tuple[R, bool]] = field(default_factory=list)  # (record, created)
    errors: list[InputError] = field(default_factory=list)


def _first(*errors: InputError | None) -> InputError | None:
    return next((e for e in errors if e is not None), None)


class Catalog:
    def __init__(
        self,
        items: ItemRepository,
        users: UserRepository,
        vectors: VectorRepository,
        limits: Limits,
        snapshots: CatalogSnapshots,
        online: OnlineState | None = None,
        impressions: ImpressionStore | None = None,
    ) -> None:
        self.items = items
        self.users = users
        self.vectors = vectors
        self.limits = limits
        self.snapshots = snapshots
        #: what is kept of each user online is erased with the user
        self.online = online
        self.impressions = impressions

    def _check_item(self, row: dict[str, Any], path: Path) -> list[InputError]:
        lim = self.limits
        errs = [
            check_id(row.get("external_id", ""), (*path, "id"), lim),
            check_text(row.get("entity_type") or "item", (*path, "entityType"), lim),
            check_text(row.get("title"), (*path, "title"), lim),
            check_text(row.get("text"), (*path, "text"), lim),
        ]
        if "entity_type" in row:
            errs.append(check_id(row["entity_type"], (*path, "entityType"), lim))
        if "categories" in row:
            errs.append(check_labels(row["categories"], (*path, "categories"), lim))
        if "tags" in row:
            errs.append(check_labels(row["tags"], (*path, "tags"), lim))
        if "attributes" in row:
            errs.append(check_json_object(row["attributes"], (*path, "attributes"), lim))
        if row.get("embedding") is not None:
            errs.append(check_embedding(row["embedding"], (*path, "embedding"), lim))
        return [e for e in errs if e is not None]

    async def upsert_items(
        self, tenant: str, rows: Sequence[dict[str, Any]], path: Path
    ) -> WriteResult[ItemRecord]:
        """Create or update items. Keys a row leaves out keep their stored values."""
        result: WriteResult[ItemRecord] = WriteResult()
        if err := check_batch(len(rows), path, self.limits):
            result.errors.append(err)
            return result
        valid: dict[str, dict[str, Any]] = {}  # last row of an id wins, as in sequential calls
        for i, row in enumerate(rows):
            errs = self._check_item(row, (*path, str(i)))
            if errs:
                result.errors.extend(errs)
            else:
                valid[row["external_id"]] = row
        embedded = [r for r in valid.values() if r.get("embedding") is not None]
        dims = {len(r["embedding"]) for r in embedded}
        if len(dims) > 1:
            result.errors.append(
                InputError(
                    (*path, "embedding"),
                    "embeddings differ in dimension",
                    ErrorCode.DIMENSION_MISMATCH,
                )
            )
            return result
        if dims:
            try:
                await self.vectors.ensure_space(tenant, INPUT_SPACE, dims.pop())
            except DimensionMismatch as exc:
                result.errors.append(
                    InputError((*path, "embedding"), str(exc), ErrorCode.DIMENSION_MISMATCH)
                )
                return result
        columns = [{k: v for k, v in r.items() if k != "embedding"} for r in valid.values()]
        result.records = await self.items.upsert_many(tenant, columns)
        if result.records:
            await self.snapshots.changed(tenant, [rec for rec, _ in result.records])
        if embedded:
            pks = {rec.external_id: rec.pk for rec, _ in result.records}
            await self.vectors.upsert(
                tenant,
                INPUT_SPACE,
                [pks[r["external_id"]] for r in embedded],
                np.asarray([r["embedding"] for r in embedded], dtype=np.float32),
            )
        return result

    async def delete_items(self, tenant: str, ids: Sequence[str]) -> list[str]:
        """Delete items and the events that refer to them; the ids deleted."""
        deleted = await self.items.delete_many(tenant, ids)
        if deleted and self.online is not None:  # kept histories hold the deleted events
            await self.online.retire(tenant)
        if deleted:
            await self.snapshots.changed(tenant, [], list(deleted.values()))
        return list(deleted)

    async def upsert_users(
        self, tenant: str, rows: Sequence[dict[str, Any]], path: Path
    ) -> WriteResult[UserRecord]:
        result: WriteResult[UserRecord] = WriteResult()
        if err := check_batch(len(rows), path, self.limits):
            result.errors.append(err)
            return result
        valid: dict[str, dict[str, Any]] = {}
        for i, row in enumerate(rows):
            p = (*path, str(i))
            errs = [
                check_id(row.get("external_id", ""), (*p, "id"), self.limits),
                check_json_object(row["attributes"], (*p, "attributes"), self.limits)
                if "attributes" in row
                else None,
            ]
            if err := _first(*errs):
                result.errors.append(err)
            else:
                valid[row["external_id"]] = row
        result.records = await self.users.upsert_many(tenant, list(valid.values()))
        return result

    async def delete_users(self, tenant: str, ids: Sequence[str]) -> list[str]:
        """Delete users and, with them, every event they made."""
        deleted = list(await self.users.delete_many(tenant, ids))
        if deleted and self.online is not None:
            await self.online.forget(tenant, deleted)
        if deleted and self.impressions is not None:  # the items shown to them, for rotation
            await self.impressions.forget(tenant, deleted)
        if deleted:  # rare: every process forgets the tenant's cached recommendations
            await self.snapshots.changed(tenant, [])
        return deleted
