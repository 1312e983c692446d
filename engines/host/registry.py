"""What the plugins registered: algorithms, embedders and presets, by unique name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from engines.algorithm import Algorithm
from engines.embedders import Embedder
from engines.host.loading import LoadReport, get_plugin_manager


class DuplicateNameError(RuntimeError):
    pass


class UnknownAlgorithmError(KeyError):
    pass


def _collect(pm: pluggy.PluginManager, hook_name: str, what: str) -> dict[str, tuple[Any, str]]:
    """``name -> (object, plugin)`` from every implementation of a list-returning hook."""
    found: dict[str, tuple[Any, str]] = {}
    hook = getattr(pm.hook, hook_name)
    for impl in hook.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        for cls in impl.function() or ():
            name = cls.name
            if name in found:
                raise DuplicateNameError(
                    f"{what} {name!r} is registered by both {found[name][1]!r} and "
                    f"{plugin_name!r}; uninstall one or restrict RECOGRAPH_PLUGINS"
                )
            found[name] = (cls, plugin_name)
    return found


@dataclass
class Registry:
    pm: pluggy.PluginManager
    algorithms: dict[str, type[Algorithm]]
    algorithm_plugins: dict[str, str]
    embedders: dict[str, type[Embedder]]
    presets: dict[str, dict[str, float]]
    report: LoadReport = field(default_factory=LoadReport)

    @classmethod
    def load(cls, allowed: Iterable[str] | None = None) -> Registry:
        """Build the registry once at start-up; duplicate names fail here, loudly."""
        pm, report = get_plugin_manager(allowed)
        algorithms = _collect(pm, "register_algorithms", "algorithm")
        embedders = _collect(pm, "register_embedders", "embedder")
        presets: dict[str, dict[str, float]] = {}
        for result in pm.hook.register_presets():
            for name, weights in (result or {}).items():
                if name in presets or name in algorithms:
                    raise DuplicateNameError(f"preset {name!r} is registered twice")
                presets[name] = dict(weights)
        return cls(
            pm=pm,
            algorithms={n: c for n, (c, _) in algorithms.items()},
            algorithm_plugins={n: p for n, (_, p) in algorithms.items()},
            embedders={n: c for n, (c, _) in embedders.items()},
            presets=presets,
            report=report,
        )

    def algorithm(self, name: str) -> type[Algorithm]:
        try:
            return self.algorithms[name]
        except KeyError:
            raise UnknownAlgorithmError(name) from None

    def expand(self, weights: dict[str, float]) -> dict[str, float]:
        """Replace presets by their member algorithms, scaling their weights."""
        out: dict[str, float] = {}
        for name, weight in weights.items():
            if name in self.presets:
                for member, w in self.presets[name].items():
                    out[member] = out.get(member, 0.0) + weight * w
            elif name in self.algorithms:
                out[name] = out.get(name, 0.0) + weight
            else:
                raise UnknownAlgorithmError(name)
        return out
