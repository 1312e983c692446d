"""``schema.graphql`` at the root is the schema the code serves."""

from __future__ import annotations

from pathlib import Path

from gql.schema import sdl

ROOT = Path(__file__).resolve().parent.parent


def test_schema_file_matches_code():
    assert (ROOT / "schema.graphql").read_text() == sdl(), (
        "schema.graphql is stale: run `recograph schema > schema.graphql`"
    )


def test_conventions():
    text = sdl()
    for mutation in ("itemUpsert", "itemsBulkUpsert", "itemDelete", "userUpsert", "userDelete",
                     "interactionRecord", "interactionsRecord", "interactionTypeUpsert"):
        assert f"  {mutation}(input: " in text
    assert "userErrors: [UserError!]!" in text
    assert "interface Node" in text
