"""Short garbage-collection pauses in API workers.

A worker holds hundreds of thousands of long-lived objects (the schema, the catalogue
copy, loaded models, libraries), and every full collection walks them all: 90-210 ms
pauses on MovieLens under load, each one stalling every request in flight. Once those
objects exist, a collection followed by ``gc.freeze()`` moves them out of the collector's
sight; later garbage is collected as before. The freeze is repeated a little after each
new model version (when a catalogue copy and models were just built); cyclic garbage
among objects frozen before that is not reclaimed, a bounded cost of a few model swaps.
"""

from __future__ import annotations

import asyncio
import gc
import logging

from engines.serving.service import RecommendationService

log = logging.getLogger(__name__)
#: seconds after start-up, or after new models, before the heap is frozen
SETTLE_SECONDS = 5.0


def freeze() -> None:
    gc.collect()
    gc.freeze()
    log.debug("heap frozen: %d objects out of the collector's sight", gc.get_freeze_count())


def keep_pauses_short(service: RecommendationService) -> None:
    """Freeze the heap soon after start-up and after each model change (coalesced)."""
    loop = asyncio.get_running_loop()
    pending: list[asyncio.TimerHandle] = []

    def soon(_: str | None = None) -> None:
        if pending and not pending[0].cancelled():
            pending[0].cancel()
        pending[:] = [loop.call_later(SETTLE_SECONDS, freeze)]

    service.model_listeners.append(soon)
    soon()
