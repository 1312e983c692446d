"""``interactionRecorded`` over graphql-transport-ws, fed by Redis pub/sub."""

from __future__ import annotations

from conftest import subscribers, until_subscribed

SUBSCRIBE = """subscription { interactionRecorded(userId: "watched") {
  userId itemId type weight } }"""
RECORD = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i)
  { recordedCount } }"""


async def test_subscriber_receives_recorded_events_for_its_user(client, gql, store):
    await gql('mutation { itemUpsert(input: {item: {id: "i1"}}) { userErrors { code } } }')
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        listening = subscribers(store, "events:default")
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}})
        await until_subscribed(store, "events:default", listening + 1)
        await gql(RECORD, {"i": {"interactions": [
            {"userId": "someone-else", "itemId": "i1", "type": "view"},
            {"userId": "watched", "itemId": "i1", "type": "purchase"},
        ]}})
        msg = await ws.receive_json(timeout=5)
        while msg["type"] == "ping":
            msg = await ws.receive_json(timeout=5)
        assert msg["type"] == "next", msg
        assert msg["payload"]["data"]["interactionRecorded"] == {
            "userId": "watched", "itemId": "i1", "type": "purchase", "weight": 10.0}
        await ws.send_json({"id": "1", "type": "complete"})
