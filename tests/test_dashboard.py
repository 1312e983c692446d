"""The dashboard (`/dashboard`) in headless Chromium: it asks for an admin key and shows
nothing before one, says so when a key is refused, and with the admin key shows the
ingestion volume, the model versions with their metrics, the top items (titles as text) and
the experiments; and `interactionVolume`, the query behind its chart, over plain HTTP.
Needs Debian's ``chromium`` and Playwright (driving that binary; no browser download)."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from browser_support import needs_chromium
from conftest import Caller, eventually
from recsys_helpers import BULK_ITEMS, RECORD, TRAIN, catalogue, events
from sqlalchemy import text

from gql.server.app import create_app
from storage.store import Store
from storage.tenancy import tenant_scope

#: an item whose title is markup: the page must show it as text, never run it
#: how long after it happened each seeded event arrived
ARRIVAL_DELAY = timedelta(minutes=5)
MARKUP_TITLE = '<img src=x onerror="document.body.dataset.pwned=1">Espresso <b>deluxe</b>'
VOLUME = """query($h: Int!, $b: Int!) { interactionVolume(hours: $h, bucketMinutes: $b) {
  start events } }"""
PAGE_DATA = """{ algorithms { name modelVersion metrics }
  trending(first: 10) { item { itemId title } } }"""
EXPERIMENTS = """{ experiments { id name status variants { name exposures clicks conversions
  interval { low high } } significance { control significant } } }"""
SCENARIO_UPSERT = """mutation($i: ScenarioUpsertInput!) { scenarioUpsert(input: $i) {
  userErrors { field message code } } }"""
EXPERIMENT_CREATE = """mutation($i: ExperimentCreateInput!) { experimentCreate(input: $i) {
  experiment { id } userErrors { field message code } } }"""
EXPERIMENT_START = """mutation($i: ExperimentIdInput!) { experimentStart(input: $i) {
  experiment { status } userErrors { field message code } } }"""
SERVE = """query($u: String!) { recommendations(userId: $u, first: 5, scenario: "home") {
  recommendationId variant item { itemId } } }"""
ANSWER = """mutation($u: String!, $i: String!, $t: String!, $r: String!) {
  interactionRecord(input: {interaction: {userId: $u, itemId: $i, type: $t,
  recommendationId: $r}}) { recordedCount userErrors { message } } }"""


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def recent_events() -> list[dict[str, Any]]:
    """The planted-structure events moved into the last 40 hours (4 to 36 hours ago), and
    two events three days old (outside a 48-hour window)."""
    planted = events()
    base = hour_floor(datetime.now(UTC)) - timedelta(hours=36)
    first = min(datetime.fromisoformat(e["timestamp"]) for e in planted)
    moved = [{**e, "timestamp": (base + (datetime.fromisoformat(e["timestamp"]) - first)
                                 + timedelta(minutes=7)).isoformat()} for e in planted]
    old = datetime.now(UTC) - timedelta(days=3)
    moved += [{"userId": "scifi-fan-0", "itemId": "scifi-1", "type": "view",
               "timestamp": old.isoformat()},
              {"userId": "horror-fan-0", "itemId": "horror-1", "type": "view",
               "timestamp": old.isoformat()}]
    # the item with a markup title is bought by many: it tops the trending list
    moved += [{"userId": f"{g}-fan-{u}", "itemId": "markup-1", "type": "purchase",
               "timestamp": (hour_floor(datetime.now(UTC)) - timedelta(hours=2)).isoformat()}
              for g in ("scifi", "romance", "horror") for u in range(10)]
    return moved


async def arrived_after_they_happened(store: Store) -> None:
    """Every stored event arrived ``ARRIVAL_DELAY`` after it happened (the test sends them
    all at once: as if they had come in as they happened)."""
    with tenant_scope(None):
        async with store.engine.begin() as conn:
            await conn.execute(text("UPDATE interactions SET created_at = occurred_at + "
                                    "make_interval(secs => :d)"),
                               {"d": ARRIVAL_DELAY.total_seconds()})


async def seed_recent(client: Caller, store: Store, *, train: bool = True
                      ) -> list[dict[str, Any]]:
    items = [*catalogue(), {"id": "markup-1", "title": MARKUP_TITLE, "categories": ["scifi"]}]
    res = await client(BULK_ITEMS, {"i": {"items": items}})
    assert res["itemsBulkUpsert"]["userErrors"] == []
    sent = recent_events()
    res = await client(RECORD, {"i": {"interactions": sent}})
    assert res["interactionsRecord"]["userErrors"] == []
    assert res["interactionsRecord"]["recordedCount"] == len(sent)
    if train:
        res = await client(TRAIN, {"i": {}})
        assert res["modelTrain"]["userErrors"] == []
    await arrived_after_they_happened(store)
    return sent


def expected_buckets(sent: list[dict[str, Any]], minutes: int) -> Counter[datetime]:
    """Events per bucket of ``minutes`` by when they arrived."""
    width = minutes * 60
    arrivals = (datetime.fromisoformat(e["timestamp"]) + ARRIVAL_DELAY for e in sent)
    return Counter(datetime.fromtimestamp(math.floor(a.timestamp() / width) * width, UTC)
                   for a in arrivals)


@pytest.fixture
async def api(store, settings) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings.model_copy(update={"require_api_key": True}), store=store)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


# ------------------------------------------------------------------ interactionVolume


async def test_interaction_volume_counts_the_callers_events_per_bucket(api, keys, store):
    admin = Caller(api, keys["acme:admin"])
    sent = await seed_recent(admin, store, train=False)

    buckets = (await admin(VOLUME, {"h": 48, "b": 60}))["interactionVolume"]
    assert len(buckets) == 48
    starts = [datetime.fromisoformat(b["start"]) for b in buckets]
    assert starts == sorted(starts) and starts[-1] <= datetime.now(UTC) < starts[-1] + timedelta(
        hours=1)
    assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(starts))
    hourly = {s: b["events"] for s, b in zip(starts, buckets, strict=True)}
    expected = expected_buckets(sent, 60)
    in_window = {s: n for s, n in expected.items() if s >= starts[0]}
    assert {s: n for s, n in hourly.items() if n} == in_window
    assert sum(hourly.values()) == len(sent) - 2  # the two three-day-old events are outside

    # wider buckets: the same events, summed by 6 hours, aligned to 6-hour boundaries
    wide = (await admin(VOLUME, {"h": 96, "b": 360}))["interactionVolume"]
    assert len(wide) == 16
    counted = {datetime.fromisoformat(b["start"]): b["events"] for b in wide}
    assert all(s.hour % 6 == 0 and s.minute == 0 for s in counted)
    assert {s: n for s, n in counted.items() if n} == expected_buckets(sent, 360)
    assert sum(counted.values()) == len(sent)

    # an event that happened ten days ago but arrives now counts in the hour it arrived
    sent_at = datetime.now(UTC)
    old = (sent_at - timedelta(days=10)).isoformat()
    res = await admin(RECORD, {"i": {"interactions": [
        {"userId": "late-user", "itemId": "scifi-2", "type": "view", "timestamp": old}]}})
    assert res["interactionsRecord"]["recordedCount"] == 1
    later = {datetime.fromisoformat(b["start"]): b["events"]
             for b in (await admin(VOLUME, {"h": 48, "b": 60}))["interactionVolume"]}
    grew = {s: n - hourly.get(s, 0) for s, n in later.items() if n != hourly.get(s, 0)}
    assert list(grew.values()) == [1]
    assert sent_at - timedelta(hours=1) < next(iter(grew)) <= datetime.now(UTC)

    # another tenant's admin sees none of them
    other = (await Caller(api, keys["globex:admin"])(VOLUME, {"h": 48, "b": 60}))
    assert sum(b["events"] for b in other["interactionVolume"]) == 0


async def test_interaction_volume_is_admin_only_and_bounded(api, keys):
    admin = Caller(api, keys["acme:admin"])
    for scope in ("read", "write"):
        body = await Caller(api, keys[f"acme:{scope}"])(VOLUME, {"h": 48, "b": 60},
                                                        expect_errors=True)
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
        assert "admin" in body["errors"][0]["message"]

    for hours, minutes, field, code in [(0, 60, "hours", "INVALID"),
                                        (-5, 60, "hours", "INVALID"),
                                        (24 * 91, 60, "hours", "INVALID"),
                                        (48, 0, "bucketMinutes", "INVALID"),
                                        (48, 1441, "bucketMinutes", "INVALID"),
                                        (720, 1, "bucketMinutes", "TOO_MANY")]:
        body = await admin(VOLUME, {"h": hours, "b": minutes}, expect_errors=True)
        assert body["data"] is None, (hours, minutes)
        extensions = body["errors"][0]["extensions"]
        assert (extensions["code"], extensions["field"]) == (code, field), (hours, minutes, body)
        assert field in body["errors"][0]["message"]


# ------------------------------------------------------------------ the page


async def test_dashboard_page_is_static_and_locked_down(api):
    resp = await api.get("/dashboard")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    html = await resp.text()
    # the page loads only its own files, and holds no data
    assert not re.search(r"(https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}", html)
    assert "<script>" not in html and "style=" not in html
    for path in re.findall(r'(?:src|href)="(/dashboard-static/[^"]+)"', html):
        asset = await api.get(path)
        assert asset.status == 200, path
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    assert (await api.get("/dashboard-static/index.html")).status == 404
    assert (await api.get("/dashboard-static/..%2fdashboard.py")).status == 404
    # the script never parses data as HTML
    script = await (await api.get("/dashboard-static/dashboard.js")).text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script


async def wait_state(page: Any, state: str) -> None:
    await page.wait_for_selector(f"body[data-state={state}]", timeout=30_000)


async def texts(page: Any, selector: str) -> list[str]:
    return [await n.inner_text() for n in await page.query_selector_all(selector)]


@needs_chromium
async def test_dashboard_asks_for_an_admin_key_then_shows_the_tenants_data(
    api, browser, keys, artifacts, store
):
    admin = Caller(api, keys["acme:admin"])
    sent = await seed_recent(admin, store)
    page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US",
                                    timezone_id="UTC")
    url = f"http://127.0.0.1:{api.port}/dashboard"

    # before a key: a form, and no data at all
    await page.goto(url)
    await wait_state(page, "locked")
    assert await page.is_visible("#key")
    assert not await page.is_visible("#dashboard")
    assert await page.query_selector_all("#top-items li, #models-rows tr, rect.bar") == []
    assert "story" not in await page.inner_text("body")

    # a wrong key: a message saying so, still no data
    await page.fill("#key", "rg_0badc0de_" + "x" * 32)
    await page.click("#key-form button[type=submit]")
    await wait_state(page, "refused")
    message = await page.inner_text("#key-error")
    assert "refused" in message and "unknown or revoked API key" in message
    assert not await page.is_visible("#dashboard")
    assert await page.query_selector_all("#top-items li") == []

    # a key without the admin scope: told it needs one
    await page.fill("#key", keys["acme:read"])
    await page.click("#key-form button[type=submit]")
    await wait_state(page, "refused")
    assert "admin" in await page.inner_text("#key-error")
    assert not await page.is_visible("#dashboard")

    # the admin key
    await page.fill("#key", keys["acme:admin"])
    await page.click("#key-form button[type=submit]")
    await wait_state(page, "ready")
    assert not await page.is_visible("#unlock")

    # (a) ingestion: every event of the last 48 hours, in hourly bars
    in_window = len(sent) - 2
    assert await page.get_attribute("#volume-chart", "data-total") == str(in_window)
    bars = await page.query_selector_all("#volume-chart rect.bar")
    assert len(bars) == 48
    assert sum([int(await b.get_attribute("data-events")) for b in bars]) == in_window
    assert f"{in_window:,} events in the last 48 hours" in await page.inner_text(
        "#volume-summary")
    by_hour = expected_buckets(sent, 60)
    shown = {datetime.fromisoformat(await b.get_attribute("data-start")):
             int(await b.get_attribute("data-events")) for b in bars}
    assert {s: n for s, n in shown.items() if n} == {s: n for s, n in by_hour.items()
                                                     if s in shown}
    # another window: 30 days by day includes the three-day-old events
    await page.select_option("#range", "720:1440")
    await page.wait_for_selector(f"#volume-chart[data-total='{len(sent)}']")
    assert len(await page.query_selector_all("#volume-chart rect.bar")) == 30
    await page.select_option("#range", "48:60")
    await page.wait_for_selector(f"#volume-chart[data-total='{in_window}']")

    # (b) model versions with their metrics, as the API has them
    data = await admin(PAGE_DATA)
    trained = [a for a in data["algorithms"] if a["modelVersion"] is not None]
    assert {a["name"] for a in trained} >= {"collaborative", "trending", "item_knn"}
    for algorithm in trained:
        row = f"#models-rows tr[data-algorithm='{algorithm['name']}']"
        assert await page.inner_text(f"{row} .version") == f"v{algorithm['modelVersion']}"
        events_shown = await page.inner_text(f"{row} [data-metric=events] dd")
        assert events_shown == f"{algorithm['metrics']['events']:,}"
        assert await page.inner_text(f"{row} [data-metric=users] dd") == str(
            algorithm["metrics"]["users"])

    # (c) the top items: the seeded titles, in the API's order, markup shown as text
    titles = {i["title"] for i in catalogue()} | {MARKUP_TITLE}
    top = [r["item"]["title"] for r in data["trending"]]
    assert len(top) == 10 and set(top) <= titles
    assert await texts(page, "#top-items li .title") == top
    assert MARKUP_TITLE in top
    assert await page.query_selector_all("#top-items img, #top-items b") == []
    assert await page.get_attribute("body", "data-pwned") is None

    # (d) the experiments section is never blank: experiments, none, or why not
    await page.wait_for_selector("#experiments:not([data-state=loading])")
    assert (await page.inner_text("#experiments-body")).strip()

    await page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)

    # the key was asked for once: a reload of the tab keeps it
    await page.reload()
    await wait_state(page, "ready")
    assert await texts(page, "#top-items li .title") == top

    # forgetting it locks the page and clears what was shown
    await page.click("#forget")
    await wait_state(page, "locked")
    assert not await page.is_visible("#dashboard")
    assert await page.query_selector_all("#top-items li, #models-rows tr, rect.bar") == []
    await page.reload()
    await wait_state(page, "locked")


@needs_chromium
async def test_dashboard_shows_each_experiments_variants_with_intervals(
    api, browser, keys, artifacts, store
):
    admin = Caller(api, keys["acme:admin"])
    await seed_recent(admin, store)
    for name, algorithm in (("home", "hybrid"), ("home-a", "collaborative"),
                            ("home-b", "trending")):
        res = await admin(SCENARIO_UPSERT, {"i": {
            "name": name, "algorithms": [{"name": algorithm, "weight": 1.0}]}})
        assert res["scenarioUpsert"]["userErrors"] == []
    res = await admin(EXPERIMENT_CREATE, {"i": {
        "name": "Home page <blend>", "scenario": "home", "metric": "CTR",
        "variants": [{"name": "control", "scenario": "home-a", "share": 0.5},
                     {"name": "trending", "scenario": "home-b", "share": 0.5}]}})
    assert res["experimentCreate"]["userErrors"] == []
    experiment_id = res["experimentCreate"]["experiment"]["id"]
    res = await admin(EXPERIMENT_START, {"i": {"id": experiment_id}})
    assert res["experimentStart"]["userErrors"] == []
    assert res["experimentStart"]["experiment"]["status"] == "RUNNING"

    # users are served the placement; some click what they were shown, a few buy it
    served = clicked = 0
    for n, genre in enumerate(("scifi", "romance", "horror") * 8):
        user = f"{genre}-fan-{n}"
        recs = (await admin(SERVE, {"u": user}))["recommendations"]
        served += 1
        if n % 2 == 0 and recs:
            rid, item = recs[0]["recommendationId"], recs[0]["item"]["itemId"]
            for kind in ("click", "purchase") if n % 6 == 0 else ("click",):
                res = await admin(ANSWER, {"u": user, "i": item, "t": kind, "r": rid})
                assert res["interactionRecord"]["userErrors"] == []
            clicked += 1

    async def counted() -> bool:
        experiment = next(x for x in (await admin(EXPERIMENTS))["experiments"]
                          if x["id"] == experiment_id)
        return (sum(v["exposures"] for v in experiment["variants"]) == served
                and sum(v["clicks"] for v in experiment["variants"]) == clicked)

    await eventually(counted)

    page = await browser.new_page(viewport={"width": 1280, "height": 900}, locale="en-US",
                                    timezone_id="UTC")
    await page.goto(f"http://127.0.0.1:{api.port}/dashboard")
    await wait_state(page, "locked")
    await page.fill("#key", keys["acme:admin"])
    await page.click("#key-form button[type=submit]")
    await wait_state(page, "ready")
    await page.wait_for_selector("#experiments[data-state=ready]", timeout=30_000)

    api_experiment = next(x for x in (await admin(EXPERIMENTS))["experiments"]
                          if x["id"] == experiment_id)
    card = f"#experiments article[data-experiment-id='{experiment_id}']"
    assert await page.inner_text(f"{card} h3") == "Home page <blend>"
    assert await page.inner_text(f"{card} .badge") == "RUNNING"
    verdict = await page.inner_text(f"{card} .verdict")
    assert ("Significant" in verdict) == api_experiment["significance"]["significant"]
    for variant in api_experiment["variants"]:
        row = f"{card} table.variants tr[data-variant='{variant['name']}']"
        for field in ("exposures", "clicks", "conversions"):
            assert await page.inner_text(f"{row} [data-field={field}]") == f"{variant[field]:,}"
        low, high = variant["interval"]["low"], variant["interval"]["high"]
        assert await page.inner_text(f"{row} [data-field=interval]") == (
            f"{low * 100:.2f}% – {high * 100:.2f}%")
        # the plot: one dot with whiskers per variant, at the API's interval
        point = f"{card} svg g.variant[data-variant='{variant['name']}']"
        assert float(await page.get_attribute(point, "data-low")) == pytest.approx(low)
        assert float(await page.get_attribute(point, "data-high")) == pytest.approx(high)
        assert len(await page.query_selector_all(f"{point} line.whisker")) == 3
        assert len(await page.query_selector_all(f"{point} circle.dot")) == 1
    await page.screenshot(path=str(artifacts / "dashboard-experiments.png"), full_page=True)
