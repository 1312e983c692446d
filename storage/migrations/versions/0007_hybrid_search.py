"""Hybrid search: a weighted full-text document per item and trigram matching of titles

Revision ID: 0007
Revises: 0006

- ``items.search_doc``: a generated ``tsvector`` (title A, tags and categories B, text C)
  with a GIN index, for ``websearch_to_tsquery`` matches ranked by ``ts_rank_cd``.
- ``pg_trgm`` and a trigram GIN index on ``items.title``, for typos and partial words.

The ``simple`` text-search configuration keeps words as written (lower-cased, no stemming,
no stop words): catalogues come in every language, and trigrams cover inflections.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# array_to_string is only STABLE (it could call any type's output function); for text[] it
# is immutable, which a generated column requires
JOIN_WORDS = (
    "CREATE OR REPLACE FUNCTION recograph_join_words(words text[]) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT array_to_string(words, ' ') $$"
)
SEARCH_DOC = (
    "setweight(to_tsvector('simple'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, recograph_join_words(tags || categories)), 'B')"
    " || setweight(to_tsvector('simple'::regconfig, coalesce(text, '')), 'C')"
)


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(JOIN_WORDS)
    op.execute(
        "ALTER TABLE items ADD COLUMN search_doc tsvector "
        f"GENERATED ALWAYS AS ({SEARCH_DOC}) STORED"
    )
    op.execute("CREATE INDEX ix_items_search_doc ON items USING gin (search_doc)")
    op.execute("CREATE INDEX ix_items_title_trgm ON items USING gin (title gin_trgm_ops)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_items_title_trgm")
    op.execute("DROP INDEX IF EXISTS ix_items_search_doc")
    op.execute("ALTER TABLE items DROP COLUMN IF EXISTS search_doc")
    op.execute("DROP FUNCTION IF EXISTS recograph_join_words(text[])")
