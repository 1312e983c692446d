"""``recograph import`` of MovieLens files and JSONL, and ``export`` back to JSONL."""

from __future__ import annotations

import json
from pathlib import Path

from storage.io import importer as importing

SAMPLE = Path(__file__).parent / "data" / "movielens-sample"


async def test_movielens_import_is_complete_and_rerunnable(store, gql):
    items, events = await importing.import_movielens(store, SAMPLE, progress=False)
    n_movies = len((SAMPLE / "movies.csv").read_text().splitlines()) - 1  # minus the header
    n_ratings = len((SAMPLE / "ratings.csv").read_text().splitlines()) - 1
    assert (items.written, events.written, events.errors) == (n_movies, n_ratings, [])

    toy = (await gql('{ item(id: "1") { title entityType categories tags attributes } }'))["item"]
    assert toy["title"] == "Toy Story"
    assert toy["entityType"] == "movie"
    assert "Animation" in toy["categories"]
    assert toy["attributes"] == {"year": 1995}
    assert "pixar" in toy["tags"]

    history = (await gql('{ user(id: "1") { interactions(first: 100) { nodes { type value } } } }'
                         ))["user"]["interactions"]["nodes"]
    assert len(history) == 60 and {h["type"] for h in history} == {"rating"}

    again = await importing.import_events(store, importing.movielens_events(SAMPLE),
                                          progress=False)
    assert (again.written, again.duplicates) == (0, n_ratings)
    assert await store.interactions.count("default") == n_ratings


async def test_jsonl_roundtrip_reports_bad_rows_with_file_row_numbers(store, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "title": "A", "categories": ["x"], "price": 3},
        {"id": "", "title": "no id"},
        {"id": "b", "attributes": {"color": "red"}},
    ]))
    report = await importing.import_items(store, importing.read_rows(items), progress=False)
    assert report.written == 2
    assert [e.field for e in report.errors] == [("items", "1", "id")]
    a = (await store.items.by_external_ids("default", ["a"]))["a"]
    assert a.attributes == {"price": 3} and a.categories == ["x"]

    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,type,value,timestamp,idempotency_key\n"
                      "u1,a,rating,4,1700000000,k1\n"
                      "u1,zzz,view,,2024-01-01T10:00:00+00:00,k2\n"
                      "u2,b,view,,2024-01-01T10:00:00+00:00,\n")
    rep = await importing.import_events(
        store, (importing.event_of(r) for r in importing.read_rows(events)), progress=False)
    assert rep.written == 2 and [e.field for e in rep.errors] == [("interactions", "1", "itemId")]


async def test_bad_cells_are_reported_by_row_and_the_rest_is_written(store, tmp_path):
    await store.catalog.upsert_items("default", [{"external_id": "a"}], ("items",))
    events = tmp_path / "events.csv"
    events.write_text("user_id,item_id,type,value,timestamp,metadata\n"
                      "u1,a,rating,4,1700000000,\n"
                      "u2,a,rating,four,1700000000,\n"
                      "u3,a,view,,yesterday,\n"
                      "u4,a,view,,2024-01-01T10:00:00,{broken\n"
                      "u5,a,view,,,\n")
    rep = await importing.import_events(
        store, (importing.event_of(r) for r in importing.read_rows(events)), progress=False)
    assert rep.written == 2
    assert [e.field for e in rep.errors] == [
        ("interactions", "1", "value"), ("interactions", "2", "timestamp"),
        ("interactions", "3", "metadata")]
    lines = tmp_path / "items.jsonl"
    lines.write_text('{"id": "x"}\nnot json\n{"id": "y", "attributes": "{bad"}\n[1, 2]\n'
                     '{"id": "z", "hidden": "yes"}\n')
    rep = await importing.import_items(store, importing.read_rows(lines), progress=False)
    assert rep.written == 2
    assert [e.field for e in rep.errors] == [
        ("items", "1"), ("items", "2", "attributes"), ("items", "3")]
    z = (await store.items.by_external_ids("default", ["z"]))["z"]
    assert z.hidden
