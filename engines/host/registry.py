"""What the plugins registered: algorithms, embedders and presets, by unique name, and the
configuration each gets from ``RECOGRAPH_PLUGIN_CONFIG``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy
from pydantic import ValidationError

from engines.algorithm import Algorithm, AlgorithmConfig
from engines.embedders import Embedder
from engines.errors import ErrorCode, RecographError
from engines.host.loading import LoadReport, get_plugin_manager


class DuplicateNameError(RuntimeError):
    pass


@dataclass(frozen=True)
class PluginConfig:
    """``RECOGRAPH_PLUGIN_CONFIG``: default configs per algorithm, options per embedder,
    and free-form sections per plugin (handed to its ``plugin_configured`` hook)::

        {"algorithms": {"collaborative": {"rank": 256}},
         "embedders": {"hashing": {"dim": 512}},
         "plugins": {"recograph-p3alpha": {"anything": "the plugin reads"}}}
    """

    algorithms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    embedders: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: Mapping[str, Any] | None) -> PluginConfig:
        raw = dict(raw or {})
        unknown = set(raw) - {"algorithms", "embedders", "plugins"}
        if unknown:
            raise ValueError(f"unknown sections in the plugin config: {', '.join(sorted(unknown))}")
        for section, value in raw.items():
            if not isinstance(value, Mapping) or not all(
                isinstance(v, Mapping) for v in value.values()
            ):
                raise ValueError(f"plugin config section {section!r} must map names to objects")
        return cls(**raw)


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


def training_fields(config_cls: type[AlgorithmConfig]) -> set[str]:
    """Config fields that only take effect when a model is trained."""
    return {
        name
        for name, f in config_cls.model_fields.items()
        if isinstance(f.json_schema_extra, dict) and f.json_schema_extra.get("training")
    }


@dataclass
class Registry:
    pm: pluggy.PluginManager
    algorithms: dict[str, type[Algorithm]]
    algorithm_plugins: dict[str, str]
    embedders: dict[str, type[Embedder]]
    embedder_plugins: dict[str, str]
    presets: dict[str, dict[str, float]]
    report: LoadReport = field(default_factory=LoadReport)
    plugin_config: PluginConfig = field(default_factory=PluginConfig)

    @classmethod
    def load(
        cls,
        allowed: Iterable[str] | None = None,
        plugin_config: Mapping[str, Any] | PluginConfig | None = None,
    ) -> Registry:
        """Build the registry once at start-up; duplicate names and invalid configs fail
        here, loudly."""
        config = (
            plugin_config
            if isinstance(plugin_config, PluginConfig)
            else PluginConfig.of(plugin_config)
        )
        pm, report = get_plugin_manager(allowed, config.plugins)
        algorithms = _collect(pm, "register_algorithms", "algorithm")
        embedders = _collect(pm, "register_embedders", "embedder")
        presets: dict[str, dict[str, float]] = {}
        for result in pm.hook.register_presets():
            for name, weights in (result or {}).items():
                if name in presets or name in algorithms:
                    raise DuplicateNameError(f"preset {name!r} is registered twice")
                presets[name] = dict(weights)
        registry = cls(
            pm=pm,
            algorithms={n: c for n, (c, _) in algorithms.items()},
            algorithm_plugins={n: p for n, (_, p) in algorithms.items()},
            embedders={n: c for n, (c, _) in embedders.items()},
            embedder_plugins={n: p for n, (_, p) in embedders.items()},
            presets=presets,
            report=report,
            plugin_config=config,
        )
        for name in config.algorithms:
            registry.config(name)  # unknown names and invalid defaults fail start-up
        return registry

    def known(self) -> str:
        return ", ".join(sorted([*self.algorithms, *self.presets]))

    def algorithm(self, name: str) -> type[Algorithm]:
        try:
            return self.algorithms[name]
        except KeyError:
            raise RecographError(
                f"unknown algorithm {name!r}; known: {self.known()}",
                ErrorCode.UNKNOWN_ALGORITHM,
                "algorithms",
            ) from None

    def config(
        self,
        name: str,
        overrides: Mapping[str, Any] | None = None,
        base: AlgorithmConfig | None = None,
    ) -> AlgorithmConfig:
        """``name``'s config: ``base`` (a trained model's) or the class defaults with the
        plugin config's defaults, then ``overrides``."""
        cls = self.algorithm(name)
        data = (
            base.model_dump()
            if base is not None
            else dict(self.plugin_config.algorithms.get(name, {}))
        )
        data |= dict(overrides or {})
        try:
            return cls.Config.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise RecographError(
                f"invalid config for {name}: {where}: {first['msg']}",
                ErrorCode.INVALID_CONFIG,
                "algorithms",
            ) from None

    def create(self, name: str, overrides: Mapping[str, Any] | None = None) -> Algorithm:
        return self.algorithm(name)(self.config(name, overrides))

    def embedder(self, name: str, options: Mapping[str, Any] | None = None) -> Embedder:
        try:
            cls = self.embedders[name]
        except KeyError:
            known = ", ".join(sorted(self.embedders))
            raise RecographError(
                f"unknown embedder {name!r}; known: {known}", ErrorCode.NOT_FOUND
            ) from None
        return cls(**{**self.plugin_config.embedders.get(name, {}), **(options or {})})

    def expand(
        self,
        weights: Mapping[str, float],
        presets: Mapping[str, Mapping[str, float]] | None = None,
    ) -> dict[str, float]:
        """Replace presets by their member algorithms, scaling their weights; ``presets``
        overrides some presets' members (a tenant's learned weights)."""
        out: dict[str, float] = {}
        for name, weight in weights.items():
            members = (presets or {}).get(name) or self.presets.get(name)
            if members is not None:
                for member, w in members.items():
                    out[member] = out.get(member, 0.0) + weight * w
            elif name in self.algorithms:
                out[name] = out.get(name, 0.0) + weight
            else:
                self.algorithm(name)  # raises UNKNOWN_ALGORITHM with the known names
        return out
