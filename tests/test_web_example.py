"""The JavaScript quick start (`examples/web`): its TypeScript types are generated from
`schema.graphql` by GraphQL Code Generator and must match what is committed, and the page's
code must type-check against them. Needs Node.js and npm (packages from the npm registry)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web"
GENERATED = EXAMPLE / "generated" / "graphql.ts"
pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="no npm on PATH")


def npm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args], cwd=EXAMPLE, capture_output=True, text=True, timeout=600, check=False
    )


@pytest.fixture(scope="module")
def installed() -> None:
    lock = EXAMPLE / "package-lock.json"
    stamp = EXAMPLE / "node_modules" / ".package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        done = npm("ci", "--no-audit", "--no-fund")
        assert done.returncode == 0, done.stderr[-2000:]


def test_generated_types_match_the_schema(installed: None) -> None:
    committed = GENERATED.read_text()
    done = npm("run", "codegen")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert GENERATED.read_text() == committed, (
        "examples/web/generated/graphql.ts is stale: run `npm run codegen` in examples/web"
    )


def test_the_page_type_checks_against_them(installed: None) -> None:
    done = npm("run", "typecheck")
    assert done.returncode == 0, done.stdout[-3000:]
