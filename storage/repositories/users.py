"""Users: created on their first event, upserted with attributes, deleted with every event
of theirs (GDPR erasure, through ``ON DELETE CASCADE``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from storage.records import UserRecord
from storage.repositories.directory import Directory
from storage.tables import USERS


class UserRepository(Directory[UserRecord]):
    table = USERS
    writable = ("attributes",)

    @staticmethod
    def record(row: Row[Any]) -> UserRecord:
        m = row._mapping
        return UserRecord(
            pk=m["id"],
            external_id=m["external_id"],
            attributes=m["attributes"],
            created_at=m["created_at"],
            updated_at=m["updated_at"],
        )
