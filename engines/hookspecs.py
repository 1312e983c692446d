"""The hooks a Recograph plugin can implement. Each is documented in docs/plugins.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from engines.algorithm import Algorithm, RecordedEvent
    from engines.embedders import Embedder

PROJECT = "recograph"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_algorithms() -> list[type[Algorithm]]:  # type: ignore[empty-body]
    """Return Algorithm classes this plugin provides. Names must be unique across plugins."""


@hookspec
def register_embedders() -> list[type[Embedder]]:  # type: ignore[empty-body]
    """Return Embedder classes (text/attributes to vectors) this plugin provides."""


@hookspec
def register_presets() -> dict[str, dict[str, float]]:  # type: ignore[empty-body]
    """Return named blends, ``{"hybrid": {"collaborative": 1.0, ...}}``."""


@hookspec
def plugin_configured(config: Mapping[str, Any]) -> None:
    """Receive this plugin's own section of ``RECOGRAPH_PLUGIN_CONFIG`` (``{}`` when it has
    none), once, when the plugins are loaded."""


@hookspec
def interaction_recorded(tenant: str, events: Sequence[RecordedEvent]) -> None:
    """Called (on every replica) after events were stored, for online updates."""


@hookspec(firstresult=True)
def recommendation_weights(
    tenant: str, user_id: str | None, weights: dict[str, float]
) -> dict[str, float] | None:
    """Override the blend of one request (e.g. for an experiment). The first plugin to
    return a dict wins; return None to leave ``weights`` as they are."""
