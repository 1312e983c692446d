"""Regenerate ``recograph_client/generated`` from ``schema.graphql`` and ``queries/``.

Run it with the Python that has ariadne-codegen (``./dev.sh`` makes ``.venv/codegen``)::

    .venv/codegen/bin/python clients/python/codegen.py            # rewrite the package
    .venv/codegen/bin/python clients/python/codegen.py --target D # into D/generated instead

ariadne-codegen runs twice into the same package: once with ``[tool.ariadne-codegen]`` of
this folder's pyproject.toml (the async client, subscriptions included), then with
``[tool.recograph-codegen.sync]`` laid over it (the sync client). The models, inputs and
enums both runs write are identical, so the two clients share them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _toml_table(name: str, table: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    nested = []
    for key, value in table.items():
        if isinstance(value, dict):
            nested.append(_toml_table(f'{name}."{key}"', value))
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n\n" + "".join(nested)


def configs(target: Path) -> list[dict[str, Any]]:
    """The settings of both runs, the package written under ``target`` (schema and queries stay
    relative to this folder, where ariadne-codegen runs, so no machine's path is written into
    the generated comments)."""
    with open(HERE / "pyproject.toml", "rb") as f:
        pyproject = tomllib.load(f)
    base = pyproject["tool"]["ariadne-codegen"]
    sync = {**base, **pyproject["tool"]["recograph-codegen"]["sync"]}
    out = []
    for settings in (base, sync):
        settings = dict(settings)
        settings["target_package_path"] = str(target)
        out.append(settings)
    return out


def generate(target: Path, codegen: str = "ariadne-codegen") -> Path:
    """Write the generated package into ``target``; returns its folder."""
    target.mkdir(parents=True, exist_ok=True)
    for settings in configs(target):
        package = target / settings["target_package_name"]
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "codegen.toml"
            config.write_text(_toml_table("tool.ariadne-codegen", settings))
            subprocess.run(
                [codegen, "--config", str(config)], check=True, cwd=HERE, capture_output=True
            )
    return package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", type=Path, help="folder to write the package into")
    args = parser.parse_args()
    codegen = str(Path(sys.executable).with_name("ariadne-codegen"))
    if not Path(codegen).exists():
        codegen = shutil.which("ariadne-codegen") or "ariadne-codegen"
    if args.target is not None:
        print(generate(args.target.resolve(), codegen))
        return
    # a clean rewrite: files of removed operations must not linger
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp), codegen)
        package = HERE / "recograph_client" / fresh.name
        shutil.rmtree(package, ignore_errors=True)
        shutil.copytree(fresh, package)
    print(package)


if __name__ == "__main__":
    main()
