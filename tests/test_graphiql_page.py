"""GET /graphql in a browser serves GraphiQL from this server only (works offline)."""

from __future__ import annotations

import re


async def test_browser_gets_graphiql_with_local_assets(client):
    resp = await client.get("/graphql", headers={"Accept": "text/html"})
    assert resp.status == 200
    html = await resp.text()
    assert "graphiql" in html.lower()
    assert not re.search(r"(https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}", html)
    assets = re.findall(r'(?:src|href)="(/graphiql-static/[^"]+)"', html)
    assert len(assets) >= 4
    for path in assets:
        asset = await client.get(path)
        assert asset.status == 200, path
        assert len(await asset.read()) > 1000


async def test_health_and_ready(client):
    assert (await (await client.get("/health")).json()) == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {"database": True, "cache": True}
