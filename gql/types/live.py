"""Subscriptions that follow what the engine does: new models, and a user's recommendations
whenever something that could change them happened, on any replica."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON

from gql.context import Context, drop_slow_consumer
from gql.server.runtime import MODELS_CHANNEL
from gql.types.filters import RecommendationFilterInput, rules_of
from gql.types.models import TrainedModel
from gql.types.recommendations import (
    AlgorithmInput,
    Recommendation,
    check_user_request,
    recommendations_of,
    selection_of,
    selects,
)
from storage.backends import SlowConsumer
from storage.events import decode_events, events_channel
from storage.tasks import stop_task

Info = strawberry.Info[Context, None]
#: a burst of changes is answered once: after this long without another ...
QUIET_SECONDS = 0.25
#: ... or this long after the first, whichever comes first
MAX_DELAY_SECONDS = 2.0


@strawberry.enum(description="What made a user's recommendations change.")
class RecommendationsCause(Enum):
    INITIAL = "initial"
    EVENTS = "events"
    MODEL = "model"
    CATALOGUE = "catalogue"


@strawberry.type(description="A user's new list (only sent when it differs from the last).")
class RecommendationsUpdate:
    causes: list[RecommendationsCause] = strawberry.field(
        description="Why it was computed again (several when a burst was coalesced)."
    )
    at: datetime
    recommendations: list[Recommendation]


class Triggers:
    """What happened since the last look, as a set of causes: bounded whatever the rate of
    changes, since a burst only needs one new list."""

    def __init__(self) -> None:
        self.causes: set[RecommendationsCause] = set()
        self.changed = asyncio.Event()

    def add(self, cause: RecommendationsCause) -> None:
        self.causes.add(cause)
        self.changed.set()

    async def next_burst(self) -> list[RecommendationsCause]:
        """The causes of the next burst, once it has calmed down (or gone on too long)."""
        await self.changed.wait()
        started = time.monotonic()
        while True:
            self.changed.clear()
            left = MAX_DELAY_SECONDS - (time.monotonic() - started)
            if left <= 0:
                break
            try:
                await asyncio.wait_for(self.changed.wait(), min(QUIET_SECONDS, left))
            except TimeoutError:
                break
        causes, self.causes = sorted(self.causes, key=lambda c: c.value), set()
        self.changed.clear()
        return causes


async def _follow_user_events(ctx: Context, user_id: str, triggers: Triggers) -> None:
    async for raw in ctx.store.cache.subscribe(events_channel(ctx.tenant)):
        if any(e.user == user_id for e in decode_events(raw)):
            triggers.add(RecommendationsCause.EVENTS)


@strawberry.type
class LiveSubscriptions:
    @strawberry.subscription(
        description="A user's recommendations: the current list first, then a new one "
        "whenever their events, a new model or a catalogue change (an item hidden, deleted "
        "or edited) changed it, on any replica. Bursts are coalesced; an unchanged list is "
        "not sent. A browser-safe `recommend` key may follow its user token's user."
    )
    async def recommendations_updated(
        self,
        info: Info,
        user_id: str,
        first: int = 10,
        algorithms: list[AlgorithmInput] | None = None,
        filter: RecommendationFilterInput | None = None,
        explain: bool = True,
        calibration: Annotated[
            float | None,
            strawberry.argument(description="As for `recommendations`."),
        ] = None,
        diversity: Annotated[
            float | None,
            strawberry.argument(description="As for `recommendations`."),
        ] = None,
    ) -> AsyncGenerator[RecommendationsUpdate, None]:
        ctx = info.context
        check_user_request(ctx, user_id, first, calibration, diversity)
        selection = selection_of(algorithms)
        rules = rules_of(filter, ctx.settings.max_batch_size)
        tenant = ctx.tenant
        triggers = Triggers()

        def on_models(changed: str) -> None:
            if changed == tenant:
                triggers.add(RecommendationsCause.MODEL)

        def on_catalogue(changed: str) -> None:
            if changed == tenant:
                triggers.add(RecommendationsCause.CATALOGUE)

        # listening starts before the first list is computed: nothing falls in between
        ctx.engine.model_listeners.append(on_models)
        ctx.store.snapshots.listeners.append(on_catalogue)
        events = asyncio.create_task(_follow_user_events(ctx, user_id, triggers))
        events.add_done_callback(lambda _: triggers.changed.set())  # a dead feed wakes us
        try:
            causes = [RecommendationsCause.INITIAL]
            last: list[tuple[int, Any]] | None = None
            while True:
                if events.done():  # the event feed fell behind (or failed): drop the socket
                    if isinstance(events.exception(), SlowConsumer):
                        await drop_slow_consumer(ctx)
                    return
                ctx.fresh_loaders()  # items that changed since are read again
                blended = await ctx.engine.recommend(
                    tenant,
                    user_id,
                    first,
                    selection,
                    rules,
                    exclude_items=(filter.exclude_ids if filter else None),
                    calibration=calibration,
                    explain=explain and selects(info, "becauseItem"),
                    diversity=diversity,
                )
                # an edited item (title, attributes) changes the list as much as a new one
                records = await ctx.store.snapshots.records(tenant, [b.item_id for b in blended])
                shown = [(b.item_id, records.get(b.item_id)) for b in blended]
                if shown != last:
                    last = shown
                    yield RecommendationsUpdate(
                        causes=causes,
                        at=datetime.now(UTC),
                        recommendations=await recommendations_of(info, blended, explain),
                    )
                causes = await triggers.next_burst()
        finally:  # the listeners first: a second cancellation may cut the wait short
            with contextlib.suppress(ValueError):
                ctx.engine.model_listeners.remove(on_models)
            with contextlib.suppress(ValueError):
                ctx.store.snapshots.listeners.remove(on_catalogue)
            await stop_task(events)

    @strawberry.subscription(
        description="Each new model version of your tenant, trained on any replica or by "
        "the trainer: its algorithm, size, training time and what training measured."
    )
    async def model_trained(
        self, info: Info, algorithm: str | None = None
    ) -> AsyncGenerator[TrainedModel, None]:
        ctx = info.context
        try:
            async for raw in ctx.store.cache.subscribe(MODELS_CHANNEL):
                message: dict[str, Any] = json.loads(raw)
                if message.get("tenant") != ctx.tenant:
                    continue
                for model in message.get("models", []):
                    if algorithm is not None and model.get("algorithm") != algorithm:
                        continue
                    yield trained_model_of(model)
        except SlowConsumer:
            await drop_slow_consumer(ctx)


def trained_model_of(model: dict[str, Any]) -> TrainedModel:
    return TrainedModel(
        algorithm=str(model["algorithm"]),
        version=int(model["version"]),
        seconds=float(model["seconds"]),
        users=int(model["users"]),
        items=int(model["items"]),
        events=int(model["events"]),
        report=JSON(model.get("report") or {}),
    )
