"""The README stays true: its configuration table is the settings' own."""

from __future__ import annotations

from pathlib import Path

from gql.server.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_configuration_table_matches_settings():
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- settings-table:start -->") + len("<!-- settings-table:start -->")
    end = text.index("<!-- settings-table:end -->")
    assert text[start:end].strip() == settings_table(), "run `recograph settings` into README"
