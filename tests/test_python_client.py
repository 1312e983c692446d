"""The Python client (clients/python) against a real server on a localhost port: the async
client directly, the sync one in a thread so the server's event loop keeps running."""

from __future__ import annotations

import asyncio
import filecmp
import subprocess
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from conftest import subscribers, until_subscribed
from recograph_client import (
    AsyncRecograph,
    AuthenticationError,
    RateLimitError,
    Recograph,
    RecographGraphQLError,
    RecographUserError,
    RetryPolicy,
    UserErrorCode,
)
from recsys_helpers import catalogue, events, genre_of

from gql.server.app import create_app

ROOT = Path(__file__).resolve().parents[1]
CLIENT = ROOT / "clients" / "python"
FAST = RetryPolicy(max_retries=3, backoff=0.05)


def url_of(server: TestClient) -> str:  # type: ignore[type-arg]
    return str(server.make_url("/graphql"))


async def test_writes_in_batches_then_explained_recommendations_and_search(secured, keys):
    async with AsyncRecograph(url_of(secured), keys["acme:admin"], retry=FAST) as client:
        items = await client.items_bulk_upsert(catalogue(), batch_size=25)
        assert (items.upserted_count, items.created_count, items.batches) == (60, 60, 3)
        stored = await client.item("romance-3")
        assert stored is not None and stored.categories == ["romance"]
        assert stored.attributes == {"price": 8, "year": 2003}

        recorded = await client.interactions_record(events(), batch_size=250)
        assert (recorded.recorded_count, recorded.batches) == (600, 3)
        again = await client.interaction_record(
            {"userId": "scifi-fan-1", "itemId": "scifi-9", "type": "purchase",
             "idempotencyKey": "evt-1"})
        assert again.recorded_count == 1
        duplicate = await client.interaction_record(
            {"userId": "scifi-fan-1", "itemId": "scifi-9", "type": "purchase",
             "idempotencyKey": "evt-1"})
        assert (duplicate.recorded_count, duplicate.duplicate_count) == (0, 1)

        models = await client.model_train()
        assert {"collaborative", "item_knn"} <= {m.algorithm for m in models}

        recs = await client.recommendations("scifi-fan-1", first=5)
        assert [r.rank for r in recs] == [1, 2, 3, 4, 5]
        assert all(r.item is not None and genre_of(r.item.item_id) == "scifi" for r in recs)
        assert {"collaborative", "item_knn"} <= {x.algorithm for r in recs for x in r.reasons}
        because = [x.because_item.item_id for r in recs for x in r.reasons if x.because_item]
        assert because and all(genre_of(b) == "scifi" for b in because)

        romance = await client.recommendations(
            "scifi-fan-1", first=5, algorithms=[{"name": "collaborative"}],
            filter={"categories": ["romance"], "attributes": [{"key": "price", "lt": 9}]})
        assert romance and all(r.item and r.item.attributes["price"] < 9 for r in romance)
        assert {x.algorithm for r in romance for x in r.reasons} <= {"collaborative", "fallback"}

        similar = await client.similar_items("horror-2", first=3)
        assert all(r.item and genre_of(r.item.item_id) == "horror" for r in similar)
        page = await client.recommendation_page("scifi-fan-1", first=3)
        more = await client.recommendation_page("scifi-fan-1", first=3, after=page[-1].cursor)
        assert [r.rank for r in more] == [4, 5, 6]
        assert {r.recommendation_id for r in page + more} == {page[0].recommendation_id}
        shown = [r.item.item_id for r in page + more if r.item]
        assert len(set(shown)) == 6
        together = await client.bought_together("horror-2", first=3)  # fans' sessions
        assert together and all(r.item and genre_of(r.item.item_id) == "horror" for r in together)
        assert all(x.algorithm == "together" for r in together for x in r.reasons)
        trending = await client.trending(first=4)  # the planted events are months old
        assert trending[0].item and trending[0].item.item_id == "scifi-9"

        hits = await client.search("galaxy story", first=5, filter={"categories": ["scifi"]})
        assert hits and all(h.item and "galaxy" in (h.item.title or "") for h in hits[:2])
        assert all(h.matches for h in hits)

        with pytest.raises(RecographGraphQLError) as bad:
            await client.recommendations("scifi-fan-1", algorithms=[{"name": "nope"}])
        assert bad.value.code == "UNKNOWN_ALGORITHM"


async def test_scenarios_and_an_experiment_through_the_client(secured, keys):
    async with AsyncRecograph(url_of(secured), keys["acme:admin"], retry=FAST) as client:
        await client.items_bulk_upsert(catalogue())
        await client.interactions_record(events())
        await client.model_train()
        home = await client.scenario_upsert("home", max_per_category=4, calibration=0)
        assert home.version == 1 and home.definition["maxPerCategory"] == 4
        await client.scenario_upsert("home-trending", algorithms=[{"name": "trending"}])
        with pytest.raises(RecographUserError) as bad:
            await client.experiment_create("too much", "home", [
                {"name": "a", "scenario": "home", "share": 0.8},
                {"name": "b", "scenario": "home-trending", "share": 0.8}])
        assert bad.value.errors[0].field == ["input", "variants"]
        test = await client.experiment_create("trending first", "home", [
            {"name": "control", "scenario": "home", "share": 0.5},
            {"name": "trending", "scenario": "home-trending", "share": 0.5}])
        assert (await client.experiment_start(test.id)).status.value == "RUNNING"
        served = {}
        for user in [f"{g}-fan-{u}" for g in ("scifi", "horror") for u in range(6)]:
            page = await client.recommendation_page(user, first=3, scenario="home")
            assert page[0].experiment_id == test.id and page[0].variant in {"control", "trending"}
            served[user] = page
        for user, page in served.items():
            assert page[0].item is not None
            await client.interaction_record({
                "userId": user, "itemId": page[0].item.item_id, "type": "click",
                "recommendationId": page[0].recommendation_id})
        result = await client.experiment(test.id)
        assert result is not None
        assert sum(v.exposures for v in result.variants) == len(served)
        assert sum(v.clicks for v in result.variants) == len(served)
        assert result.significance.warning  # a dozen lists are too few to decide
        promoted = await client.experiment_promote(test.id, "trending")
        assert (promoted.status.value, promoted.winner) == ("STOPPED", "trending")


async def test_sync_client_user_errors_and_authentication(secured, keys):
    url = url_of(secured)

    def run() -> None:
        with Recograph(url, keys["acme:write"], retry=FAST) as client:
            created = client.item_upsert({"id": "sku-1", "title": "Espresso machine"})
            assert created.created and created.item and created.item.title == "Espresso machine"
            rows = [{"id": f"sku-{k}"} for k in range(5)]
            rows[3] = {"id": " "}  # blank: refused, the other rows are written
            with pytest.raises(RecographUserError) as refused:
                client.items_bulk_upsert(rows, batch_size=2)
            error = refused.value.errors[0]
            # the path counts from the start of the list, across batches
            assert error.field == ["input", "items", "3", "id"]
            assert error.code == UserErrorCode.BLANK
            assert refused.value.result.upserted_count == 4
            stored = {n.item_id for n in client.items(first=10).nodes}
            assert stored == {"sku-0", "sku-1", "sku-2", "sku-4"}

            with pytest.raises(RecographUserError) as unknown:
                client.interaction_record({"userId": "u", "itemId": "missing", "type": "view"})
            assert unknown.value.errors[0].field[-1] == "itemId"

        with Recograph(url, "rg_0badc0de_" + "x" * 32) as stranger:
            with pytest.raises(AuthenticationError) as denied:
                stranger.trending()
            assert denied.value.status_code == 401

    await asyncio.to_thread(run)


@pytest.fixture
async def limited(store, settings):
    """A server allowing one request per second per key."""
    _, key = await store.api_keys.create("default", "slow", ["read"])
    tight = settings.model_copy(update={
        "require_api_key": True, "rate_limit_per_key": 1.0, "rate_limit_per_tenant": 100.0,
        "rate_limit_burst_seconds": 1.0})
    async with TestClient(TestServer(create_app(tight, store=store))) as server:
        yield server, key


async def test_429_is_retried_after_retry_after_then_raised(limited):
    server, key = limited
    url = url_of(server)

    def run() -> tuple[float, RateLimitError]:
        with Recograph(url, key, retry=RetryPolicy(max_retries=3, backoff=0.01)) as client:
            client.trending(first=1)
            started = time.monotonic()
            assert client.trending(first=1) == []  # 429, Retry-After: 1, then answered
            waited = time.monotonic() - started
        with (
            Recograph(url, key, retry=RetryPolicy(max_retries=0)) as impatient,
            pytest.raises(RateLimitError) as limit,
        ):
            impatient.trending(first=1)
        return waited, limit.value

    waited, error = await asyncio.to_thread(run)
    assert waited >= 1.0  # the server's Retry-After, not the 0.01 s backoff
    assert error.status_code == 429 and error.retry_after is not None and error.retry_after >= 1


async def test_browser_key_with_user_token_and_key_management(secured, keys):
    url = url_of(secured)
    async with AsyncRecograph(url, keys["acme:admin"], retry=FAST) as admin:
        await admin.items_bulk_upsert(catalogue(per_genre=5))
        await admin.interactions_record(events(users_per_genre=3, per_user=4, per_genre=5))
        token = (await admin.user_token_create("scifi-fan-1", ttl_seconds=600)).token
        assert token

        created = await admin.api_key_create("reporting", ["read"])
        assert created.secret and created.api_key and created.api_key.scopes == ["read"]
        assert "reporting" in {k.name for k in await admin.api_keys()}
        web = await admin.api_key_create(
            "pages", ["recommend"], allowed_origins=["https://Shop.example"]
        )
        assert web.api_key and web.api_key.allowed_origins == ["https://shop.example"]
        moved = await admin.api_key_update(web.api_key.prefix, allowed_origins=["*"])
        assert moved.allowed_origins == ["*"]
        with pytest.raises(RecographUserError) as bad:
            await admin.api_key_update(web.api_key.prefix, allowed_origins=["shop.example"])
        assert bad.value.errors[0].field == ["input", "allowedOrigins", "0"]
        async with AsyncRecograph(url, created.secret) as reporting:
            assert len((await reporting.items(first=2)).nodes) == 2
            assert await admin.api_key_revoke(created.api_key.prefix) == created.api_key.prefix
            with pytest.raises(AuthenticationError):
                await reporting.items(first=2)

    async with AsyncRecograph(url, keys["acme:recommend"], user_token=token) as page:
        recs = await page.recommendations("scifi-fan-1", first=3)
        assert len(recs) == 3
        with pytest.raises(RecographGraphQLError) as other:
            await page.recommendations("scifi-fan-2", first=3)
        assert other.value.code == "FORBIDDEN"
    async with AsyncRecograph(url, keys["acme:recommend"]) as bare:
        with pytest.raises(RecographGraphQLError, match="user token"):
            await bare.recommendations("scifi-fan-1")


async def test_subscription_receives_an_interaction_recorded_by_another_call(
    secured, keys, store
):
    url = url_of(secured)
    async with AsyncRecograph(url, keys["acme:admin"]) as writer, AsyncRecograph(
        url, keys["acme:read"]
    ) as reader:
        await writer.item_upsert({"id": "i1"})
        listening = subscribers(store, "events:acme")

        async def first_event():
            async for event in reader.interaction_recorded(user_id="watched"):
                return event
            return None

        task = asyncio.create_task(first_event())
        await until_subscribed(store, "events:acme", listening + 1)
        await writer.interactions_record([
            {"userId": "someone-else", "itemId": "i1", "type": "view"},
            {"userId": "watched", "itemId": "i1", "type": "purchase"},
        ])
        event = await asyncio.wait_for(task, 10)
        assert event is not None
        assert (event.user_id, event.item_id, event.type_, event.weight) == (
            "watched", "i1", "purchase", 10.0)


async def test_live_recommendations_follow_the_users_events(client, store):
    """`async for update in client.recommendations_updated(user)`: the current list, then
    the new one after the user acts elsewhere."""
    url = url_of(client)
    async with AsyncRecograph(url, retry=FAST) as app:
        await app.items_bulk_upsert(catalogue(per_genre=5))
        await app.interactions_record(events(users_per_genre=3, per_user=4, per_genre=5))
        await app.model_train()
        updates = app.recommendations_updated("scifi-fan-1", first=4)
        first = await asyncio.wait_for(anext(updates), 10)
        assert [c.value for c in first.causes] == ["INITIAL"]
        shown = [r.item.item_id for r in first.recommendations if r.item]
        assert shown == [r.item.item_id for r in await app.recommendations("scifi-fan-1",
                                                                           first=4) if r.item]
        await app.interaction_record(
            {"userId": "scifi-fan-1", "itemId": shown[0], "type": "purchase"})
        second = await asyncio.wait_for(anext(updates), 10)
        assert shown[0] not in [r.item.item_id for r in second.recommendations if r.item]
        await updates.aclose()  # type: ignore[attr-defined]


def test_generated_code_matches_schema_graphql(tmp_path):
    """Regenerating the client from schema.graphql and queries/ changes nothing: the
    committed code never drifts from the schema."""
    python = ROOT / ".venv" / "codegen" / "bin" / "python"
    if not python.exists():
        pytest.fail("no .venv/codegen: run ./dev.sh (it installs ariadne-codegen there)")
    subprocess.run([str(python), str(CLIENT / "codegen.py"), "--target", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    committed = CLIENT / "recograph_client" / "generated"

    def files(folder: Path) -> set[str]:
        return {p.relative_to(folder).as_posix() for p in folder.rglob("*.py")}

    fresh = tmp_path / "generated"
    assert files(fresh) == files(committed)
    _, mismatch, errors = filecmp.cmpfiles(fresh, committed, sorted(files(fresh)),
                                               shallow=False)
    assert not mismatch and not errors, (
        f"{mismatch + errors} differ: run .venv/codegen/bin/python clients/python/codegen.py")
