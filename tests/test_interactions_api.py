"""Recording events: weights by type, idempotency, per-row rejection, bulk size, history."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

RECORD = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i) {
  recordedCount duplicateCount userErrors { field message code } } }"""
ONE = """mutation($i: InteractionRecordInput!) { interactionRecord(input: $i) {
  recordedCount duplicateCount userErrors { field message code } } }"""
BULK_ITEMS = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  upsertedCount createdCount userErrors { field message code } } }"""
HISTORY = """query($u: ID!, $first: Int!, $after: String) { user(id: $u) { userId
  interactions(first: $first, after: $after) {
    nodes { type weight value timestamp item { itemId title } }
    pageInfo { hasNextPage endCursor } } } }"""


async def items(gql, n: int, prefix: str = "i") -> None:
    data = await gql(
        BULK_ITEMS,
        {"i": {"items": [{"id": f"{prefix}{k}", "title": f"Item {k}"} for k in range(n)]}},
    )
    assert data["itemsBulkUpsert"]["userErrors"] == []


async def test_weights_follow_interaction_types(gql):
    await items(gql, 3)
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    events = [
        {"userId": "u", "itemId": "i0", "type": "purchase", "timestamp": t0.isoformat()},
        {
            "userId": "u",
            "itemId": "i1",
            "type": "dislike",
            "timestamp": (t0 + timedelta(seconds=1)).isoformat(),
        },
        {
            "userId": "u",
            "itemId": "i2",
            "type": "rating",
            "value": 4.5,
            "timestamp": (t0 + timedelta(seconds=2)).isoformat(),
        },
        {
            "userId": "u",
            "itemId": "i2",
            "type": "view",
            "weight": 0.25,
            "timestamp": (t0 + timedelta(seconds=3)).isoformat(),
        },
    ]
    res = await gql(RECORD, {"i": {"interactions": events}})
    assert res["interactionsRecord"] == {"recordedCount": 4, "duplicateCount": 0, "userErrors": []}
    hist = (await gql(HISTORY, {"u": "u", "first": 10}))["user"]["interactions"]["nodes"]
    assert [(h["type"], h["weight"]) for h in hist] == [
        ("view", 0.25),
        ("rating", 2.0),
        ("dislike", -3.0),
        ("purchase", 10.0),
    ]
    assert hist[0]["item"] == {"itemId": "i2", "title": "Item 2"}


async def test_custom_interaction_type_changes_weight(gql):
    await items(gql, 1)
    res = await gql("""mutation { interactionTypeUpsert(input: {name: "share", weight: 4}) {
        interactionType { name weight polarity } userErrors { code } } }""")
    assert res["interactionTypeUpsert"]["interactionType"] == {
        "name": "share",
        "weight": 4.0,
        "polarity": "POSITIVE",
    }
    types = {
        t["name"]: t
        for t in (await gql("{ interactionTypes { name weight polarity } }"))["interactionTypes"]
    }
    assert types["dislike"]["polarity"] == "NEGATIVE"
    assert types["rating"]["polarity"] == "BY_VALUE"
    assert {"view", "click", "add_to_cart", "purchase", "like", "dislike", "share"} <= set(types)
    await gql(ONE, {"i": {"interaction": {"userId": "u", "itemId": "i0", "type": "share"}}})
    hist = (await gql(HISTORY, {"u": "u", "first": 1}))["user"]["interactions"]["nodes"]
    assert hist[0]["weight"] == 4.0


async def test_ten_thousand_events_in_one_call_are_idempotent_by_key(gql, store):
    await items(gql, 100)
    events = [
        {
            "userId": f"u{k % 500}",
            "itemId": f"i{k % 100}",
            "type": "view",
            "idempotencyKey": f"k{k}",
        }
        for k in range(10_000)
    ]
    first = await gql(RECORD, {"i": {"interactions": events}})
    assert first["interactionsRecord"] == {
        "recordedCount": 10_000,
        "duplicateCount": 0,
        "userErrors": [],
    }
    again = await gql(RECORD, {"i": {"interactions": events[:5_000]}})
    assert again["interactionsRecord"]["recordedCount"] == 0
    assert again["interactionsRecord"]["duplicateCount"] == 5_000
    assert await store.interactions.count("default") == 10_000
    same_batch = [events[0] | {"idempotencyKey": "twice"}] * 2
    res = await gql(RECORD, {"i": {"interactions": same_batch}})
    assert (
        res["interactionsRecord"]["recordedCount"],
        res["interactionsRecord"]["duplicateCount"],
    ) == (1, 1)


async def test_concurrent_batches_of_new_users_and_shared_keys_all_land(gql, store):
    # batches racing to create the same new users (in different orders) and to store the
    # same idempotency keys must wait for each other, not deadlock into a fault
    await items(gql, 50)
    rng = random.Random(3)

    def batch(n: int) -> list[dict]:
        users = [f"new{k}" for k in range(1200)]
        rng.shuffle(users)
        keys = [f"shared{k}" for k in range(600)] + [f"own{n}-{k}" for k in range(600)]
        rng.shuffle(keys)
        return [
            {"userId": u, "itemId": f"i{k % 50}", "type": "view", "idempotencyKey": key}
            for k, (u, key) in enumerate(zip(users, keys, strict=True))
        ]

    results = await asyncio.gather(
        *(gql(RECORD, {"i": {"interactions": batch(n)}}) for n in range(4))
    )
    assert all(r["interactionsRecord"]["userErrors"] == [] for r in results)
    recorded = sum(r["interactionsRecord"]["recordedCount"] for r in results)
    assert recorded == 600 + 4 * 600
    assert await store.interactions.count("default") == recorded
    assert await store.users.count("default") == 1200


async def test_every_field_of_a_big_batch_is_stored(gql, store):
    # big batches take another path into PostgreSQL (COPY and one merge): nothing may differ
    await items(gql, 10)
    t0 = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)
    events = [
        {
            "userId": f"b{k % 7}",
            "itemId": f"i{k % 10}",
            "type": "rating" if k % 2 else "view",
            "value": 1.0 + k % 5 if k % 2 else None,
            "weight": 3.5 if k % 3 == 0 else None,
            "timestamp": (t0 + timedelta(seconds=k)).isoformat(),
            "metadata": {"n": k, "tags": ["x", "ü"]} if k % 4 == 0 else None,
            "idempotencyKey": f"big{k}",
        }
        for k in range(1500)
    ]
    res = await gql(RECORD, {"i": {"interactions": events}})
    assert res["interactionsRecord"]["recordedCount"] == 1500
    async with store.engine.connect() as conn:
        rows = {
            r.idempotency_key: r
            for r in await conn.execute(
                text(
                    "SELECT e.idempotency_key, u.external_id AS u, i.external_id AS i, e.type, "
                    "e.weight, e.value, e.occurred_at, e.metadata FROM interactions e "
                    "JOIN users u ON u.id = e.user_id JOIN items i ON i.id = e.item_id"
                )
            )
        }
    for k in (0, 1, 3, 4, 1499):
        r = rows[f"big{k}"]
        assert (r.u, r.i, r.type) == (f"b{k % 7}", f"i{k % 10}", events[k]["type"])
        assert r.value == events[k]["value"]
        assert r.occurred_at == t0 + timedelta(seconds=k)
        assert r.metadata == (events[k]["metadata"] or {})
    assert rows["big0"].weight == 3.5  # given
    # a weight from the type, as the single-event path computes it
    one = await gql(ONE, {"i": {"interaction": events[1] | {"idempotencyKey": "small1"}}})
    assert one["interactionRecord"]["recordedCount"] == 1
    async with store.engine.connect() as conn:
        small = (
            await conn.execute(
                text("SELECT weight FROM interactions WHERE idempotency_key = 'small1'")
            )
        ).scalar_one()
    assert rows["big1"].weight == small != 3.5
    again = await gql(RECORD, {"i": {"interactions": events}})
    assert again["interactionsRecord"]["duplicateCount"] == 1500


async def test_unknown_items_are_rejected_per_row_and_the_rest_stored(gql, store):
    await items(gql, 2)
    events = [
        {"userId": "u", "itemId": "i0", "type": "click"},
        {"userId": "u", "itemId": "ghost", "type": "click"},
        {"userId": "u", "itemId": "i1", "type": "teleport"},
        {"userId": "u", "itemId": "i1", "type": "click"},
    ]
    res = (await gql(RECORD, {"i": {"interactions": events}}))["interactionsRecord"]
    assert res["recordedCount"] == 2
    assert [(e["field"], e["code"]) for e in res["userErrors"]] == [
        (["input", "interactions", "2", "type"], "UNKNOWN_TYPE"),
        (["input", "interactions", "1", "itemId"], "NOT_FOUND"),
    ]
    assert "teleport" in res["userErrors"][0]["message"]
    assert await store.items.pks("default", ["ghost"]) == {}


async def test_auto_create_items_when_configured(store):
    store.events.auto_create_items = True
    try:
        from storage.events import EventInput

        res = await store.events.record(
            "default", [EventInput(user_id="u", item_id="new-item", type="view")], ("x",)
        )
        assert res.recorded == 1 and res.errors == []
        assert "new-item" in await store.items.pks("default", ["new-item"])
    finally:
        store.events.auto_create_items = False


async def test_history_pages_newest_first(gql):
    await items(gql, 30)
    t0 = datetime(2024, 5, 1, tzinfo=UTC)
    events = [
        {
            "userId": "reader",
            "itemId": f"i{k}",
            "type": "view",
            "timestamp": (t0 + timedelta(minutes=k)).isoformat(),
        }
        for k in range(30)
    ]
    await gql(RECORD, {"i": {"interactions": events}})
    seen, after = [], None
    while True:
        conn = (await gql(HISTORY, {"u": "reader", "first": 7, "after": after}))["user"][
            "interactions"
        ]
        seen += [n["item"]["itemId"] for n in conn["nodes"]]
        if not conn["pageInfo"]["hasNextPage"]:
            break
        after = conn["pageInfo"]["endCursor"]
    assert seen == [f"i{k}" for k in reversed(range(30))]


async def test_deleting_a_user_erases_their_events(gql, store):
    await items(gql, 3)
    await gql(
        RECORD,
        {
            "i": {
                "interactions": [
                    {"userId": "gdpr", "itemId": f"i{k}", "type": "view"} for k in range(3)
                ]
                + [{"userId": "other", "itemId": "i0", "type": "view"}]
            }
        },
    )
    res = await gql(
        'mutation { userDelete(input: {id: "gdpr"}) { deletedUserId userErrors { code } } }'
    )
    assert res["userDelete"] == {"deletedUserId": "gdpr", "userErrors": []}
    async with store.engine.connect() as conn:
        left = (await conn.execute(text("SELECT count(*) FROM interactions"))).scalar_one()
    assert left == 1
    assert (await gql('{ user(id: "gdpr") { userId } }'))["user"] is None


async def test_user_upsert_keeps_attributes_unless_sent(gql):
    q = """mutation($i: UserUpsertInput!) { userUpsert(input: $i) { created
           user { userId attributes } userErrors { field code } } }"""
    a = await gql(q, {"i": {"user": {"id": "ann", "attributes": {"plan": "pro"}}}})
    assert a["userUpsert"]["created"] is True
    b = await gql(q, {"i": {"user": {"id": "ann"}}})
    assert b["userUpsert"] == {
        "created": False,
        "userErrors": [],
        "user": {"userId": "ann", "attributes": {"plan": "pro"}},
    }


async def test_an_event_is_a_node_fetchable_by_its_global_id(gql, secured, keys):
    from conftest import Caller

    await gql('mutation { itemUpsert(input: {item: {id: "n1"}}) { created } }')
    await gql('mutation { interactionRecord(input: {interaction: {userId: "nu", itemId: "n1", '
              'type: "like"}}) { recordedCount } }')
    history = await gql('{ user(id: "nu") { interactions(first: 1) { nodes { id type } } } }')
    event = history["user"]["interactions"]["nodes"][0]
    found = await gql("query($id: ID!) { node(id: $id) { id ... on Interaction { type "
                      "item { itemId } } } }", {"id": event["id"]})
    assert found["node"] == {"id": event["id"], "type": "like", "item": {"itemId": "n1"}}
    # another tenant cannot fetch it
    other = await Caller(secured, keys["acme:read"])("query($id: ID!) { node(id: $id) { id } }",
                                                      {"id": event["id"]})
    assert other["node"] is None


async def test_concurrent_single_events_each_get_their_own_answer(gql, store, sql_counter):
    # single events sent at once share one transaction: nobody may get another's outcome
    await items(gql, 5)
    stored = {"userId": "s", "itemId": "i0", "type": "view", "idempotencyKey": "known"}
    assert (await gql(ONE, {"i": {"interaction": stored}}))["interactionRecord"][
        "recordedCount"
    ] == 1
    fresh = [{"userId": f"s{k}", "itemId": f"i{k % 5}", "type": "view"} for k in range(10)]
    unknown = [{"userId": f"s{k}", "itemId": f"nope{k}", "type": "view"} for k in range(10)]
    again = [stored] * 10
    sent = [*fresh, *unknown, *again]
    sql_counter.statements.clear()
    answers = await asyncio.gather(*(gql(ONE, {"i": {"interaction": e}}) for e in sent))
    inserts = [s for s in sql_counter.statements if s.startswith("INSERT INTO interactions")]
    assert 1 <= len(inserts) < 20  # written in groups, not one transaction each
    got = [a["interactionRecord"] for a in answers]
    for a in got[:10]:
        assert (a["recordedCount"], a["duplicateCount"], a["userErrors"]) == (1, 0, [])
    for k, a in enumerate(got[10:20]):
        assert (a["recordedCount"], a["duplicateCount"]) == (0, 0)
        assert [(e["field"], e["code"]) for e in a["userErrors"]] == [
            (["input", "interaction", "itemId"], "NOT_FOUND")
        ]
        assert f"nope{k}" in a["userErrors"][0]["message"]
    for a in got[20:]:
        assert (a["recordedCount"], a["duplicateCount"], a["userErrors"]) == (0, 1, [])
    assert await store.interactions.count("default") == 11


async def test_an_event_that_fails_in_the_database_does_not_fail_its_group(gql, store):
    # an item deleted behind this process's catalogue copy (as by another replica whose
    # message has not arrived yet): its event fails in PostgreSQL; the events written in the
    # same group must still be stored
    await items(gql, 5)
    first = {"userId": "g", "itemId": "i0", "type": "view"}  # the catalogue copy is built
    assert (await gql(ONE, {"i": {"interaction": first}}))["interactionRecord"][
        "recordedCount"
    ] == 1
    async with store.engine.begin() as conn:
        await conn.execute(text("DELETE FROM items WHERE external_id = 'i4'"))
    events = [{"userId": f"g{k}", "itemId": f"i{k % 4}", "type": "view"} for k in range(30)]
    doomed = {"userId": "g-doomed", "itemId": "i4", "type": "view"}
    sent = [*events[:10], doomed, *events[10:]]  # not first: the first goes alone
    answers = await asyncio.gather(
        *(gql(ONE, {"i": {"interaction": e}}, expect_errors=True) for e in sent)
    )
    del answers[10]
    assert all(a["data"]["interactionRecord"]["recordedCount"] == 1 for a in answers)
    assert await store.interactions.count("default") == 31


async def test_a_time_without_a_utc_equivalent_is_refused_by_name(gql):
    await items(gql, 1)
    event = {
        "userId": "u",
        "itemId": "i0",
        "type": "view",
        "timestamp": "0001-01-01T00:00:00+14:00",
    }
    res = (await gql(ONE, {"i": {"interaction": event}}))["interactionRecord"]
    assert res["recordedCount"] == 0
    assert res["userErrors"][0]["field"] == ["input", "interaction", "timestamp"]
