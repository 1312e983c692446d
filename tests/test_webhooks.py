"""Webhooks: signed deliveries to a real local receiver, retries, dead letters and replay,
SSRF refusals, tenants and kinds kept apart, and an outbox that survives a SIGKILL."""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import Caller, eventually, server_env, start_server, stop_server, until_ready
from test_cli import free_port

from gql.server.app import create_app

CREATE = """mutation($i: WebhookCreateInput!) { webhookCreate(input: $i) {
  secret webhook { id url kinds active } userErrors { field message code } } }"""
DELIVERIES = """query($w: ID, $s: WebhookDeliveryStatus, $n: Int! = 20, $after: String) {
  webhookDeliveries(webhookId: $w, status: $s, first: $n, after: $after) {
    nodes { id webhookId kind status attempts lastStatus lastError payload deliveredAt }
    pageInfo { hasNextPage endCursor } } }"""
REPLAY = """mutation($i: WebhookDeliveryReplayInput!) { webhookDeliveryReplay(input: $i) {
  delivery { id status attempts } userErrors { field message code } } }"""
ITEMS = """mutation($i: ItemsBulkUpsertInput!) { itemsBulkUpsert(input: $i) {
  userErrors { message } } }"""
RECORD = """mutation($i: InteractionsRecordInput!) { interactionsRecord(input: $i) {
  recordedCount userErrors { message } } }"""
RECORD_ONE = """mutation($i: InteractionRecordInput!) { interactionRecord(input: $i) {
  recordedCount userErrors { message } } }"""


class Receiver:
    """A webhook endpoint on 127.0.0.1 that checks every signature and timestamp, and
    answers 500 to the first ``failures`` attempts of each delivery."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.secrets: dict[str, str] = {}  # path -> signing secret
        self.calls: list[dict[str, Any]] = []
        self.port = free_port()
        self.runner: web.AppRunner | None = None

    def accepted(self, path: str | None = None) -> list[dict[str, Any]]:
        return [c["body"] for c in self.calls
                if c["status"] == 200 and (path is None or c["path"] == path)]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        timestamp = request.headers["Recograph-Timestamp"]
        secret = self.secrets[request.path]
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw,
                            hashlib.sha256).hexdigest()
        valid = (hmac.compare_digest(f"v1={expected}", request.headers["Recograph-Signature"])
                 and abs(time.time() - int(timestamp)) < 300)
        delivery = request.headers["Recograph-Delivery"]
        body = json.loads(raw)
        tries = sum(c["delivery"] == delivery for c in self.calls)
        status = 401 if not valid else 500 if tries < self.failures else 200
        self.calls.append({"path": request.path, "delivery": delivery, "status": status,
                           "event": request.headers["Recograph-Event"], "body": body})
        assert body["id"] == delivery and body["type"] == request.headers["Recograph-Event"]
        return web.Response(status=status, text="nope" if status != 200 else "ok")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{path:.*}", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver(failures=2).start()
    yield r
    await r.stop()


Connect = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def connect(store, settings) -> AsyncIterator[Connect]:
    """A server that requires keys and may call local webhooks, with fast retries."""
    clients: list[TestClient[Any, Any]] = []

    async def make(**overrides: Any) -> TestClient[Any, Any]:
        values = {"require_api_key": True, "webhook_allow_private": True,
                  "webhook_backoff_seconds": 0.05, "webhook_backoff_cap_seconds": 0.2,
                  **overrides}
        client = TestClient(TestServer(create_app(settings.model_copy(update=values),
                                                  store=store)))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


async def create_hook(admin: Caller, receiver: Receiver, kinds: list[str],
                      path: str = "/hook") -> str:
    data = await admin(CREATE, {"i": {"url": receiver.url(path), "kinds": kinds}})
    payload = data["webhookCreate"]
    assert payload["userErrors"] == [] and payload["secret"].startswith("whsec_")
    receiver.secrets[path] = payload["secret"]
    return str(payload["webhook"]["id"])


async def deliveries(admin: Caller, **variables: Any) -> list[dict[str, Any]]:
    data = await admin(DELIVERIES, variables)
    return list(data["webhookDeliveries"]["nodes"])


async def seed_items(caller: Caller, *ids: str) -> None:
    data = await caller(ITEMS, {"i": {"items": [{"id": i, "title": i} for i in ids]}})
    assert data["itemsBulkUpsert"]["userErrors"] == []


async def test_signed_delivery_is_retried_until_the_receiver_accepts(
    connect, keys, receiver
):
    client = await connect()
    admin = Caller(client, keys["acme:admin"])
    writer = Caller(client, keys["acme:write"])
    hook = await create_hook(admin, receiver, ["EVENTS_RECORDED"])
    await seed_items(writer, "sku-1", "sku-2")
    events = [{"userId": "u1", "itemId": "sku-1", "type": "view", "idempotencyKey": "k1"},
              {"userId": "u2", "itemId": "sku-2", "type": "purchase"}]
    res = await writer(RECORD, {"i": {"interactions": events}})
    assert res["interactionsRecord"]["recordedCount"] == 2

    async def delivered() -> bool:
        return len(await deliveries(admin, s="DELIVERED")) == 1

    await eventually(delivered, within=10)
    [row] = await deliveries(admin, w=hook)
    assert row["kind"] == "EVENTS_RECORDED" and row["attempts"] == 3
    assert row["lastStatus"] == 200 and row["deliveredAt"] is not None
    assert [c["status"] for c in receiver.calls] == [500, 500, 200]  # every signature valid
    [body] = receiver.accepted()
    assert body["type"] == "events.recorded" and body["id"] == row["id"]
    assert [(e["userId"], e["itemId"], e["type"], e["idempotencyKey"])
            for e in body["data"]["events"]] == [
        ("u1", "sku-1", "view", "k1"), ("u2", "sku-2", "purchase", None)]
    assert body["data"] == row["payload"]

    # a single event (written with other requests' single events) is delivered too
    res = await writer(RECORD_ONE, {"i": {"interaction": {
        "userId": "u3", "itemId": "sku-2", "type": "like"}}})
    assert res["interactionRecord"]["recordedCount"] == 1
    await eventually(lambda: len(receiver.accepted()) == 2, within=10)
    assert [e["userId"] for e in receiver.accepted()[1]["data"]["events"]] == ["u3"]
    page = await admin(DELIVERIES, {"n": 1})
    assert page["webhookDeliveries"]["pageInfo"]["hasNextPage"] is True
    older = await deliveries(admin, n=1, after=page["webhookDeliveries"]["pageInfo"]["endCursor"])
    assert [d["id"] for d in older] == [row["id"]]


async def test_a_delivery_dies_after_its_attempts_and_replay_delivers_it(
    connect, keys, receiver
):
    receiver.failures = 1_000
    client = await connect(webhook_max_attempts=3)
    admin = Caller(client, keys["acme:admin"])
    await create_hook(admin, receiver, ["EVENTS_RECORDED"])
    await seed_items(admin, "sku-1")
    await admin(RECORD, {"i": {"interactions": [
        {"userId": "u1", "itemId": "sku-1", "type": "view"}]}})

    async def dead() -> bool:
        return len(await deliveries(admin, s="DEAD")) == 1

    await eventually(dead, within=10)
    [row] = await deliveries(admin)
    assert row["attempts"] == 3 and row["lastStatus"] == 500
    assert row["lastError"].startswith("HTTP 500")
    assert [c["status"] for c in receiver.calls] == [500, 500, 500]

    receiver.failures = 0
    res = await admin(REPLAY, {"i": {"deliveryId": row["id"]}})
    assert res["webhookDeliveryReplay"]["userErrors"] == []
    assert res["webhookDeliveryReplay"]["delivery"]["status"] in ("PENDING", "DELIVERED")

    async def delivered() -> bool:
        return len(await deliveries(admin, s="DELIVERED")) == 1

    await eventually(delivered, within=10)
    [row] = await deliveries(admin)
    assert row["attempts"] == 1 and row["lastStatus"] == 200 and row["lastError"] is None
    assert len(receiver.accepted()) == 1
    missing = await admin(REPLAY, {"i": {"deliveryId": "999999"}})
    assert missing["webhookDeliveryReplay"]["userErrors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize("url, why", [
    ("http://127.0.0.1:8000/hook", "loopback"),
    ("http://10.0.0.1/hook", "private"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://localhost:8000/hook", "loopback"),
    ("file:///etc/passwd", "http"),
    ("not a url", "http"),
    ("http://a..b/hook", "resolve"),  # names IDNA cannot encode: refused, not a fault
    ("http://" + "x" * 70 + ".example/hook", "resolve"),
])
async def test_private_and_non_http_targets_are_refused(gql, url, why):
    data = await gql(CREATE, {"i": {"url": url, "kinds": ["EVENTS_RECORDED"]}})
    payload = data["webhookCreate"]
    assert payload["webhook"] is None and payload["secret"] is None
    [error] = payload["userErrors"]
    assert error["field"] == ["input", "url"] and error["code"] == "INVALID"
    assert why in error["message"]
    assert (await gql("{ webhooks { id } }"))["webhooks"] == []


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_private_target_is_refused_again_when_delivering(gql, store, receiver, host):
    # stored before the setting changed, say: the worker checks the address it connects to
    hook = await store.webhooks.create("default", f"http://{host}:{receiver.port}/hook",
                                       ["events.recorded"])
    receiver.secrets["/hook"] = hook.secret
    await seed_items(Caller(gql.client, None), "sku-1")
    await gql(RECORD, {"i": {"interactions": [
        {"userId": "u1", "itemId": "sku-1", "type": "view"}]}})

    async def refused() -> bool:
        rows = await gql(DELIVERIES)
        return any("refused" in (n["lastError"] or "")
                   for n in rows["webhookDeliveries"]["nodes"])

    await eventually(refused, within=10)
    assert receiver.calls == []


async def test_only_matching_kinds_and_tenants_receive(connect, keys, receiver):
    receiver.failures = 0
    client = await connect()
    acme, globex = Caller(client, keys["acme:admin"]), Caller(client, keys["globex:admin"])
    await create_hook(acme, receiver, ["EVENTS_RECORDED"], "/acme-events")
    models = await create_hook(acme, receiver, ["MODEL_TRAINED"], "/acme-models")
    await create_hook(globex, receiver, ["EVENTS_RECORDED", "MODEL_TRAINED"], "/globex")
    # the write scope may not manage webhooks
    refused = await Caller(client, keys["acme:write"])("{ webhooks { id } }",
                                                        expect_errors=True)
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    await seed_items(acme, "sku-1", "sku-2", "sku-3")
    res = await acme(RECORD, {"i": {"interactions": [
        {"userId": f"u{n}", "itemId": f"sku-{1 + n % 3}", "type": "purchase"}
        for n in range(12)]}})
    assert res["interactionsRecord"]["recordedCount"] == 12
    # written with the events: globex has none, acme's model webhook none yet
    assert await deliveries(globex) == []
    assert await deliveries(acme, w=models) == []
    await eventually(lambda: len(receiver.accepted("/acme-events")) == 1, within=10)

    res = await acme("""mutation { modelTrain(input: {algorithms: ["trending"]}) {
        models { algorithm version } userErrors { message } } }""")
    assert res["modelTrain"]["models"] == [{"algorithm": "trending", "version": 1}]
    await eventually(lambda: len(receiver.accepted("/acme-models")) == 1, within=10)
    [trained] = receiver.accepted("/acme-models")
    assert trained["type"] == "model.trained"
    assert {k: trained["data"][k] for k in ("algorithm", "version", "events")} == {
        "algorithm": "trending", "version": 1, "events": 12}
    assert [c["event"] for c in receiver.calls if c["path"] == "/acme-events"] == [
        "events.recorded"]
    assert [c for c in receiver.calls if c["path"] == "/globex"] == []
    assert await deliveries(globex) == []


async def test_paused_webhooks_get_nothing_and_deleted_ones_leave_no_log(connect, keys, receiver):
    client = await connect()
    admin = Caller(client, keys["acme:admin"])
    hook = await create_hook(admin, receiver, ["EVENTS_RECORDED"])
    update = """mutation($i: WebhookUpdateInput!) { webhookUpdate(input: $i) {
        webhook { id active kinds description } userErrors { field message code } } }"""
    res = await admin(update, {"i": {"id": hook, "active": False, "description": "paused"}})
    assert res["webhookUpdate"]["webhook"] == {
        "id": hook, "active": False, "kinds": ["EVENTS_RECORDED"], "description": "paused"}
    await seed_items(admin, "sku-1")
    await admin(RECORD, {"i": {"interactions": [
        {"userId": "u1", "itemId": "sku-1", "type": "view"}]}})
    assert await deliveries(admin) == []

    res = await admin(update, {"i": {"id": hook, "active": True, "kinds": []}})
    assert [e["field"] for e in res["webhookUpdate"]["userErrors"]] == [["input", "kinds"]]
    res = await admin(update, {"i": {"id": hook, "active": True}})
    assert res["webhookUpdate"]["webhook"]["active"] is True
    await admin(RECORD, {"i": {"interactions": [
        {"userId": "u2", "itemId": "sku-1", "type": "view"}]}})
    assert len(await deliveries(admin)) == 1

    delete = """mutation($i: WebhookDeleteInput!) { webhookDelete(input: $i) {
        deletedId userErrors { code } } }"""
    assert (await admin(delete, {"i": {"id": hook}}))["webhookDelete"]["deletedId"] == hook
    assert (await admin("{ webhooks { id } }"))["webhooks"] == []
    assert await deliveries(admin) == []
    again = await admin(delete, {"i": {"id": hook}})
    assert again["webhookDelete"]["userErrors"] == [{"code": "NOT_FOUND"}]


async def test_a_delivery_written_before_a_sigkill_arrives_after_restart(
    store, database_url
):
    receiver = Receiver()  # not listening yet
    port = free_port()
    env = server_env(
        database_url,
        RECOGRAPH_WEBHOOK_ALLOW_PRIVATE="true",
        RECOGRAPH_WEBHOOK_MAX_ATTEMPTS="100",
        RECOGRAPH_WEBHOOK_BACKOFF_SECONDS="0.2",
        RECOGRAPH_WEBHOOK_BACKOFF_CAP_SECONDS="0.5",
        RECOGRAPH_WEBHOOK_TIMEOUT_SECONDS="2",
    )

    async def call(query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.post(
                f"http://127.0.0.1:{port}/graphql",
                json={"query": query, "variables": variables}) as resp:
            body = await resp.json()
        assert "errors" not in body, body
        return dict(body["data"])

    server = start_server(port, env)
    try:
        await until_ready(port, server)
        data = await call(CREATE, {"i": {"url": receiver.url(), "kinds": ["EVENTS_RECORDED"]}})
        receiver.secrets["/hook"] = data["webhookCreate"]["secret"]
        await call(ITEMS, {"i": {"items": [{"id": "sku-1"}]}})
        res = await call(RECORD, {"i": {"interactions": [
            {"userId": "u1", "itemId": "sku-1", "type": "purchase"}]}})
        assert res["interactionsRecord"]["recordedCount"] == 1
        [pending] = (await call(DELIVERIES))["webhookDeliveries"]["nodes"]
        assert pending["status"] == "PENDING"
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)

        await receiver.start()
        server = start_server(port, env)
        await until_ready(port, server)

        async def delivered() -> bool:
            nodes = (await call(DELIVERIES))["webhookDeliveries"]["nodes"]
            return [n["status"] for n in nodes] == ["DELIVERED"]

        await eventually(delivered, within=20)
        [body] = receiver.accepted()
        assert body["id"] == pending["id"]
        assert [e["userId"] for e in body["data"]["events"]] == ["u1"]
    finally:
        stop_server(server)
        await receiver.stop()


async def test_a_watched_users_changed_recommendations_are_sent(connect, keys, store):
    """RECOMMENDATIONS_CHANGED: the list is remembered when the user is watched; an event
    that changes it sends the old and the new list, once."""
    from recsys_helpers import LIST_FIRST_10, seed
    from sqlalchemy import text

    receiver = await Receiver().start()
    try:
        client = await connect()
        admin = Caller(client, keys["acme:admin"])
        await seed(admin)
        data = await admin(CREATE, {"i": {"url": receiver.url(), "kinds":
                                          ["RECOMMENDATIONS_CHANGED"],
                                          "watchUserIds": ["scifi-fan-1"]}})
        receiver.secrets["/hook"] = data["webhookCreate"]["secret"]

        async def remembered() -> bool:
            async with store.engine.connect() as conn:
                rows = await conn.execute(text("SELECT count(*) FROM watched_lists"))
                return rows.scalar_one() == 1

        await eventually(remembered)
        before = [r["item"]["itemId"] for r in
                  (await admin(LIST_FIRST_10, {"u": "scifi-fan-1"}))["recommendations"]]
        await admin(RECORD, {"i": {"interactions": [
            {"userId": "scifi-fan-1", "itemId": before[0], "type": "purchase"},
            {"userId": "scifi-fan-2", "itemId": before[1], "type": "purchase"}]}})
        await eventually(lambda: len(receiver.accepted()) == 1, within=10)
        [body] = receiver.accepted()
        after = [r["item"]["itemId"] for r in
                 (await admin(LIST_FIRST_10, {"u": "scifi-fan-1"}))["recommendations"]]
        assert body["type"] == "recommendations.changed"
        assert body["data"] == {"userId": "scifi-fan-1", "cause": "events",
                                "previous": before, "recommendations": after}
        assert before[0] not in after
    finally:
        await receiver.stop()


async def test_finished_deliveries_past_their_retention_leave_the_log(connect, keys, store,
                                                                      receiver):
    from sqlalchemy import text

    receiver.failures = 0
    client = await connect()
    admin = Caller(client, keys["acme:admin"])
    await create_hook(admin, receiver, ["EVENTS_RECORDED"])
    await seed_items(admin, "i1")
    for user in ("u1", "u2", "u3"):
        await admin(RECORD, {"i": {"interactions": [{"userId": user, "itemId": "i1",
                                                     "type": "view"}]}})
    await eventually(lambda: len(receiver.accepted()) == 3, within=10)
    async with store.engine.begin() as conn:  # age two of them, and leave one pending
        await conn.execute(text(
            "UPDATE webhook_deliveries SET created_at = now() - interval '40 days' "
            "WHERE id IN (SELECT id FROM webhook_deliveries ORDER BY id LIMIT 2)"))
        await conn.execute(text(
            "UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = "
            "now() + interval '1 day' WHERE id = (SELECT min(id) FROM webhook_deliveries)"))
    assert await store.webhooks.prune(30) == 1  # the old delivered one, not the pending
    left = await deliveries(admin)
    assert sorted(d["status"] for d in left) == ["DELIVERED", "PENDING"]


async def test_the_webhook_limit_holds_under_concurrent_creation(connect, keys, store):
    import asyncio

    client = await connect()
    admin = Caller(client, keys["acme:admin"])
    made = await asyncio.gather(*(
        admin(CREATE, {"i": {"url": f"http://127.0.0.1:9/h{n}", "kinds": ["MODEL_TRAINED"]}})
        for n in range(30)))
    created = [m for m in made if m["webhookCreate"]["webhook"] is not None]
    assert len(created) == 20
    assert len(await store.webhooks.for_tenant("acme")) == 20


async def test_deleting_a_user_erases_them_from_the_webhook_log(connect, keys, store):
    receiver = Receiver()  # not listening: the deliveries stay pending
    client = await connect()
    admin = Caller(client, keys["acme:admin"])
    await create_hook(admin, receiver, ["EVENTS_RECORDED"])
    await seed_items(admin, "i1")
    await admin(RECORD, {"i": {"interactions": [
        {"userId": "gone", "itemId": "i1", "type": "view"},
        {"userId": "stays", "itemId": "i1", "type": "view"}]}})
    await admin(RECORD, {"i": {"interactions": [
        {"userId": "gone", "itemId": "i1", "type": "view"}]}})
    res = await admin('mutation { userDelete(input: {id: "gone"}) { deletedUserId } }')
    assert res["userDelete"]["deletedUserId"] == "gone"
    left = await deliveries(admin)
    events = [e["userId"] for d in left for e in d["payload"]["events"]]
    assert events == ["stays"]  # one delivery redacted, the other (only "gone") deleted


async def test_an_import_from_the_command_line_sends_changed_recommendations(
        connect, store, settings, tmp_path):
    """Events loaded with ``recograph import`` (another process, no API) change a watched
    user's list: the import queues the delivery before it ends, the service sends it."""
    import asyncio
    import os
    import subprocess
    import sys

    from conftest import REDIS_URL
    from recsys_helpers import LIST_FIRST_10, seed

    receiver = await Receiver().start()
    try:
        client = await connect(require_api_key=False)
        admin = Caller(client, None)
        await seed(admin)
        data = await admin(CREATE, {"i": {"url": receiver.url(), "kinds":
                                          ["RECOMMENDATIONS_CHANGED"],
                                          "watchUserIds": ["scifi-fan-1"]}})
        receiver.secrets["/hook"] = data["webhookCreate"]["secret"]
        before = [r["item"]["itemId"] for r in
                  (await admin(LIST_FIRST_10, {"u": "scifi-fan-1"}))["recommendations"]]
        await asyncio.sleep(1.5)  # the watch remembers the list first
        events = tmp_path / "events.jsonl"
        events.write_text(json.dumps({"user_id": "scifi-fan-1", "item_id": before[0],
                                      "type": "purchase"}) + "\n")
        env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": REDIS_URL,
               "RECOGRAPH_LOG_LEVEL": "WARNING"}
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "gql.cli", "import", "interactions",
                             str(events), "--quiet"],
            env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "Task was destroyed" not in done.stderr
        await eventually(lambda: len(receiver.accepted()) == 1, within=20)
        [body] = receiver.accepted()
        assert body["type"] == "recommendations.changed"
        assert body["data"]["previous"] == before and before[0] not in body["data"][
            "recommendations"]
    finally:
        await receiver.stop()
