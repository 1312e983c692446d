"""Debian's Chromium, driven by Playwright (no browser download), for the browser tests:
the binary, how to start it and the folder for screenshots (the ``browser`` and
``artifacts`` fixtures are in conftest.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("RECOGRAPH_TEST_ARTIFACTS", ".recograph/test-artifacts"))
needs_chromium = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM} (apt install chromium)"
)
#: as the machine's own check starts it: no sandbox as root, no calls home
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

