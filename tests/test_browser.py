"""The example page (`examples/web`) in headless Chromium: a page on an allowed origin shows
a user's recommendations with reasons and updates live; the same page on another origin is
refused. Needs Debian's ``chromium`` (``./dev.sh test`` installs it) and Playwright (driving
that binary; no browser download)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from browser_support import needs_chromium
from conftest import Caller
from recsys_helpers import seed

from gql.server import graphiql
from gql.server.app import create_app

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "web"
pytest.importorskip("playwright.async_api")  # the fixtures drive Chromium through it
pytestmark = needs_chromium
WEB_KEY = """mutation($o: [String!]!) { apiKeyCreate(input: {name: "shop pages",
  scopes: [RECOMMEND], allowedOrigins: $o}) { secret userErrors { message } } }"""
MINT = """mutation($u: String!) { userTokenCreate(input: {userId: $u}) { token } }"""
SAME_QUERY = """query($u: String!) { recommendations(userId: $u, first: 10) {
  item { itemId } } }"""
RECORD = """mutation($u: String!, $i: String!) { interactionRecord(input: {interaction:
  {userId: $u, itemId: $i, type: "purchase"}}) { recordedCount } }"""


async def static_origin() -> TestServer:
    """A second web server (another origin) serving the example page and graphql-ws."""
    app = web.Application()
    vendor = graphiql.assets_dir() / "graphql-ws.min.js"

    async def graphql_ws(request: web.Request) -> web.FileResponse:
        return web.FileResponse(vendor)

    app.router.add_get("/vendor/graphql-ws.min.js", graphql_ws)
    app.router.add_static("/", EXAMPLE)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def api(store, settings) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(settings.model_copy(update={"require_api_key": True}), store=store)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


async def shown(page: Any) -> list[str]:
    return [await li.get_attribute("data-item-id") for li in await page.query_selector_all("li")]


async def test_a_page_on_an_allowed_origin_shows_live_recommendations(
    api, browser, keys, artifacts
):
    shop, elsewhere = await static_origin(), await static_origin()
    try:
        client = Caller(api, keys["acme:admin"])
        await seed(client)
        origin = f"http://127.0.0.1:{shop.port}"
        created = (await client(WEB_KEY, {"o": [origin]}))["apiKeyCreate"]
        token = (await client(MINT, {"u": "scifi-fan-1"}))["userTokenCreate"]["token"]
        query = urlencode({"api": f"http://127.0.0.1:{api.port}/graphql",
                           "key": created["secret"], "token": token, "user": "scifi-fan-1"})

        page = await browser.new_page()
        await page.goto(f"{origin}/index.html?{query}")
        await page.wait_for_selector("#status[data-state=ready]", timeout=15_000)
        await page.wait_for_selector("body[data-live=subscribed]")
        first = await shown(page)
        fresh = (await client(SAME_QUERY, {"u": "scifi-fan-1"}))["recommendations"]
        assert first == [r["item"]["itemId"] for r in fresh] and len(first) == 10
        reasons = await page.inner_text("li:first-child .why")
        assert "because you liked" in reasons
        await page.screenshot(path=str(artifacts / "example-page.png"), full_page=True)

        # the user buys the top item elsewhere: Recograph pushes the new list to the page
        shown_so_far = int(await page.get_attribute("body", "data-refreshes") or 0)
        await client(RECORD, {"u": "scifi-fan-1", "i": first[0]})
        await page.wait_for_selector(f"body[data-refreshes='{shown_so_far + 1}']",
                                     timeout=10_000)
        second = await shown(page)
        fresh = (await client(SAME_QUERY, {"u": "scifi-fan-1"}))["recommendations"]
        assert first[0] not in second
        assert second == [r["item"]["itemId"] for r in fresh]

        # the same page served from an origin the key does not allow gets nothing
        other = await browser.new_page()
        await other.goto(f"http://127.0.0.1:{elsewhere.port}/index.html?{query}")
        await other.wait_for_selector("#status[data-state=error]", timeout=15_000)
        assert await shown(other) == []
        await other.screenshot(path=str(artifacts / "example-page-refused.png"))
    finally:
        await shop.close()
        await elsewhere.close()
