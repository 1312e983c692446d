"""Building the plugin manager: built-ins and entry-point plugins load the same way."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from engines import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "recograph"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.collaborative",
    "plugins.item_knn",
    "plugins.content",
    "plugins.trending",
    "plugins.cold_start",
    "plugins.hybrid",
    "plugins.embedders",
)


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def get_plugin_manager(
    allowed: Iterable[str] | None = None,
) -> tuple[pluggy.PluginManager, LoadReport]:
    """A fresh plugin manager with the built-in plugins and those installed under the
    ``recograph`` entry-point group. ``allowed`` (``RECOGRAPH_PLUGINS``) restricts which load,
    by module name or entry-point name. A plugin that fails to import is reported by name and
    skipped, so one broken third-party package cannot take the server down."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    wanted = set(allowed) if allowed is not None else None
    report = LoadReport()
    for module_name in DEFAULT_PLUGINS:
        if wanted is not None and module_name not in wanted:
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
            report.loaded.append(module_name)
        except Exception as exc:  # a built-in failing is a bug, but still not fatal
            log.exception("built-in plugin %s failed to load", module_name)
            report.failed[module_name] = f"{type(exc).__name__}: {exc}"
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted and ep.value not in wanted:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            pm.register(ep.load(), name=ep.name)
            report.loaded.append(ep.name)
        except Exception as exc:
            log.error("plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
            report.failed[ep.name] = f"{type(exc).__name__}: {exc}"
    return pm, report
