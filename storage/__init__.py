"""Persistence: tables, migrations, repositories, vectors and the cache/pub-sub backends."""
