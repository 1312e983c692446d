"""Change detection for ``recommendations.changed`` webhooks.

The process where a change happens (events written, items changed, a model trained) looks
again at the recommendations of the users some webhook watches, after a short pause that
gathers a burst into one look, and the store queues a delivery for each list that differs
from the one remembered for that user."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from engines.serving.service import RecommendationService
from storage.store import Store
from storage.tasks import stop_tasks
from storage.tenancy import tenant_scope

log = logging.getLogger(__name__)
#: changes within this long are looked at together
PAUSE_SECONDS = 1.0
#: a watched user's list: the top of the default blend
WATCHED_LIST_SIZE = 10


class RecommendationWatch:
    def __init__(self, store: Store, service: RecommendationService) -> None:
        self.store = store
        self.service = service
        #: per tenant: the users to look at (None: all watched users) and the causes
        self._pending: dict[str, tuple[set[str] | None, set[str]]] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._stopping = False

    def schedule(self, tenant: str, users: Iterable[str] | None, cause: str) -> None:
        """Look at ``users`` of ``tenant`` (None: every watched user) soon."""
        wanted, causes = self._pending.get(tenant, (set(), set()))
        if users is None or wanted is None:
            wanted = None
        else:
            wanted |= set(users)
        self._pending[tenant] = (wanted, causes | {cause})
        if tenant not in self._tasks and not self._stopping:
            self._tasks[tenant] = asyncio.create_task(self._look(tenant))

    async def _look(self, tenant: str) -> None:
        try:
            await asyncio.sleep(PAUSE_SECONDS)
            wanted, causes = self._pending.pop(tenant, (set(), set()))
            with tenant_scope(tenant):
                watched = await self.store.webhooks.watched_users(tenant)
                users = watched if wanted is None else watched & wanted
                cause = ",".join(sorted(causes))
                for user in sorted(users):
                    await self._check(tenant, user, cause)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("could not look for changed recommendations of %s", tenant)
        finally:
            self._tasks.pop(tenant, None)
            # changes arrived while looking: look again (unless shutting down)
            if tenant in self._pending and not self._stopping:
                self._tasks[tenant] = asyncio.create_task(self._look(tenant))

    async def _check(self, tenant: str, user: str, cause: str) -> None:
        blended = await self.service.recommend(tenant, user, WATCHED_LIST_SIZE, explain=False)
        records = await self.store.snapshots.records(tenant, [b.item_id for b in blended])
        ids = [records[b.item_id].external_id for b in blended if b.item_id in records]
        await self.store.webhooks.list_changed(tenant, user, ids, cause)

    async def drain(self) -> None:
        """Wait until every change seen so far was looked at (a CLI import or training
        ends only once its watched users' deliveries are queued)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def stop(self) -> None:
        """Stop looking; a look cancelled in its pause starts no other."""
        self._stopping = True
        await stop_tasks(list(self._tasks.values()))
