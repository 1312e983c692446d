"""The dashboard at ``/dashboard``: ingestion volume, model versions and their evaluation
metrics, the top items and the experiments of the caller's tenant.

The page is hand-written HTML, CSS and JavaScript in ``static/dashboard`` (no framework, no
third-party code, no build step; charts are SVG drawn by the script). It is public and holds
no data: it asks for an admin API key once (kept in the tab's ``sessionStorage``), then reads
everything from this service's own ``/graphql`` with that key, like any other client. A
Content-Security-Policy lets it run only its own script and talk only to its own origin.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

PAGE_PATH = "/dashboard"
STATIC_PREFIX = "/dashboard-static"
STATIC_DIR = Path(__file__).resolve().parent / "static" / "dashboard"
#: the files the page loads, and their types (nothing else is served from the directory)
ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}


async def page(request: web.Request) -> web.Response:
    """The page itself (no data: the script fetches it with the key the user enters)."""
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return web.Response(text=html, content_type="text/html", headers=HEADERS)


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    kind = ASSETS.get(name)
    if kind is None:
        raise web.HTTPNotFound()
    body = (STATIC_DIR / name).read_bytes()
    return web.Response(body=body, content_type=kind, charset="utf-8", headers=HEADERS)


def add_routes(app: web.Application) -> None:
    """``GET /dashboard`` and its script and stylesheet."""
    app.router.add_get(PAGE_PATH, page)
    app.router.add_get(STATIC_PREFIX + "/{name}", asset)
