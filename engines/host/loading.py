"""Building the plugin manager: built-ins and entry-point plugins load the same way."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, entry_points, version
from typing import Any

import pluggy

from engines import hookspecs

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "recograph"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "plugins.collaborative",
    "plugins.item_knn",
    "plugins.ease",
    "plugins.content",
    "plugins.trending",
    "plugins.cold_start",
    "plugins.hybrid",
    "plugins.embedders",
)


def _recograph_version() -> str:
    try:
        return version("recograph")
    except PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    module: str
    version: str
    builtin: bool
    hooks: tuple[str, ...]


@dataclass
class LoadReport:
    loaded: list[PluginInfo] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def _hooks_of(pm: pluggy.PluginManager, plugin: object) -> tuple[str, ...]:
    return tuple(sorted(c.name for c in pm.get_hookcallers(plugin) or ()))


def get_plugin_manager(
    allowed: Iterable[str] | None = None,
    plugin_config: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[pluggy.PluginManager, LoadReport]:
    """A fresh plugin manager with the built-in plugins and those installed under the
    ``recograph`` entry-point group. ``allowed`` (``RECOGRAPH_PLUGINS``) restricts which load,
    by module name or entry-point name. A plugin that fails to import is reported by name and
    skipped, so one broken third-party package cannot take the server down. Each plugin then
    receives its own section of ``plugin_config`` through ``plugin_configured``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    wanted = set(allowed) if allowed is not None else None
    report = LoadReport()
    for module_name in DEFAULT_PLUGINS:
        if wanted is not None and module_name not in wanted:
            continue
        try:
            module = importlib.import_module(module_name)
            pm.register(module, name=module_name)
        except Exception as exc:  # a built-in failing is a bug, but still not fatal
            log.exception("built-in plugin %s failed to load", module_name)
            report.failed[module_name] = f"{type(exc).__name__}: {exc}"
            continue
        report.loaded.append(
            PluginInfo(module_name, module_name, _recograph_version(), True, _hooks_of(pm, module))
        )
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted is not None and ep.name not in wanted and ep.value not in wanted:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:
            log.error("plugin %r (%s) failed to load: %s", ep.name, ep.value, exc)
            report.failed[ep.name] = f"{type(exc).__name__}: {exc}"
            continue
        dist_version = ep.dist.version if ep.dist is not None else "unknown"
        report.loaded.append(
            PluginInfo(ep.name, ep.value, dist_version, False, _hooks_of(pm, plugin))
        )
    sections = plugin_config or {}
    for impl in pm.hook.plugin_configured.get_hookimpls():
        name = pm.get_name(impl.plugin) or ""
        impl.function(config=dict(sections.get(name, {})))
    return pm, report
