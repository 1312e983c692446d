"""HTTP-level abuse: malformed bodies and headers, key guessing, slow senders, what the
unauthenticated endpoints reveal, and what the logs and metrics keep."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from recsys_helpers import seed

from gql.server.app import create_app


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[" * 20_000 + "]" * 20_000, "nested too deeply"),
        ("123", "must be a JSON object"),
        ('"a string"', "must be a JSON object"),
        ("null", "must be a JSON object"),
        ("{\"query\": \"{ __typename }\"", "not valid JSON"),
        ('{"query": "{ __typename }", "variables": {"x": NaN}}', "NaN is not a JSON number"),
        (b'{"query": "{ __typename }", "x": "\xff"}', "not valid JSON"),
    ],
)
async def test_malformed_bodies_are_400s_with_a_reason(client, body, reason):
    resp = await client.post("/graphql", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    payload = await resp.json()
    assert payload["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert reason in payload["errors"][0]["message"]


async def test_what_the_fast_decoder_refuses_is_still_read_exactly(client):
    """orjson turns integers beyond 64 bits into floats and refuses lone surrogates; JSON
    allows both, and such a body must mean what it says."""
    big = -(2**63) - 1  # a float would be -2**63
    body = (
        '{"query": "mutation($i: ItemUpsertInput!) { itemUpsert(input: $i) { item { '
        'attributes title } userErrors { code } } }", "variables": {"i": {"item": '
        f'{{"id": "big", "title": "a\\u00e9", "attributes": {{"n": {big}}}}}}}}}}}'
    )
    resp = await client.post("/graphql", data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 200
    item = (await resp.json())["data"]["itemUpsert"]["item"]
    assert item == {"attributes": {"n": big}, "title": "a\u00e9"}
    read = await client.post("/graphql", json={"query": '{ item(id: "big") { attributes } }'})
    assert (await read.json())["data"]["item"]["attributes"] == {"n": big}


async def raw_request(server: TestServer, request: bytes, read_timeout: float = 10.0) -> bytes:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), read_timeout)
    finally:
        writer.close()


async def test_a_non_utf8_authorization_header_is_a_401(secured):
    body = b'{"query": "{ __typename }"}'
    request = (b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Authorization: Bearer rg_\xff\xfe\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
    answer = await raw_request(secured.server, request)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    assert b"UNAUTHENTICATED" in answer


@pytest.fixture
async def slow_guesses(store: Any, settings: Any) -> AsyncIterator[Any]:
    """A server that requires keys and allows 4 failed lookups a second per address (a
    rate this test's guesses exceed however busy the machine is: each is a hash check)."""
    slow = settings.model_copy(update={"require_api_key": True, "auth_lookups_per_address": 4.0})
    async with TestClient(TestServer(create_app(slow, store=store))) as client:
        yield client


async def test_guessing_keys_is_rate_limited_without_locking_out_real_keys(slow_guesses, keys):
    """Malformed keys and keys whose prefix no key has cost no lookup; guesses at a real
    key's prefix are limited per address and prefix, so another key, used from the same
    address (a shared proxy), keeps working."""
    secured = slow_guesses
    statuses = []
    for _ in range(40):
        resp = await secured.post("/graphql", json={"query": "{ __typename }"},
                                  headers={"Authorization": f"Bearer rg_{secrets.token_hex(8)}"})
        statuses.append(resp.status)
    assert set(statuses) == {401}  # malformed: refused without a lookup, never limited
    prefix = keys["acme:read"].split("_")[1]
    for _ in range(60):
        guess = f"rg_{prefix}_{secrets.token_urlsafe(32)}"
        resp = await secured.post("/graphql", json={"query": "{ __typename }"},
                                  headers={"Authorization": f"Bearer {guess}"})
        statuses.append(resp.status)
        if resp.status == 429:
            break
    assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
    assert statuses[40:70].count(401) >= 8  # a burst of 2 s at 4 lookups/s went first
    for key in (keys["acme:write"], keys["globex:read"]):
        ok = await secured.post("/graphql", json={"query": "{ __typename }"},
                                headers={"Authorization": f"Bearer {key}"})
        assert ok.status == 200, await ok.text()


async def test_the_body_of_an_unauthenticated_request_is_never_read(secured):
    """A request without a valid key is answered from its headers: the server does not
    wait for (or take in) a large body first."""
    request = (b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 50000000\r\n\r\n" + b"{" * 1000)
    answer = await raw_request(secured.server, request, read_timeout=5.0)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]


async def test_a_huge_query_text_is_refused_before_it_is_parsed_or_cached(client):
    query = "{ __typename " + "__typename " * 20_000 + "}"
    resp = await client.post("/graphql", json={"query": query})
    assert resp.status == 400
    assert "longer than 100,000 characters" in (await resp.json())["errors"][0]["message"]


async def test_a_client_that_hangs_up_is_not_a_server_error(client, gql, caplog):
    await seed(gql, train=False)
    with caplog.at_level(logging.INFO):
        for _ in range(5):
            request = b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            body = b'{"query": "{ items(first: 5) { nodes { itemId } } }"}'
            _, writer = await asyncio.open_connection(client.server.host, client.server.port)
            writer.write(request + b"Content-Length: " + str(len(body) + 100).encode()
                         + b"\r\n\r\n" + body)
            await writer.drain()
            writer.close()  # hangs up with the body unfinished
        await asyncio.sleep(0.2)
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status == 200
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.fixture
async def impatient(store, settings):
    quick = settings.model_copy(update={"request_read_timeout_seconds": 1.0})
    async with TestClient(TestServer(create_app(quick, store=store))) as client:
        yield client


async def test_slow_senders_are_cut_off(impatient):
    server = impatient.server
    # headers that never end
    answer = await raw_request(server, b"POST /graphql HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert answer == b""  # the server closed the connection
    # a body that never arrives
    answer = await raw_request(
        server, b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{\"query\": ")
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    # and nobody is held up meanwhile
    resp = await impatient.post("/graphql", json={"query": "{ __typename }"})
    assert resp.status == 200


async def test_health_endpoints_name_no_tenant(secured, keys, store, settings):
    from conftest import Caller

    acme = Caller(secured, keys["acme:admin"])
    await seed(acme)
    ready = await (await secured.get("/ready")).json()
    assert ready["modelsLoaded"] >= 1
    assert "acme" not in str(ready)
    metrics = await (await secured.get("/metrics")).text()
    assert "acme" not in metrics and "tenant=" not in metrics
    guarded = settings.model_copy(update={"metrics_token": "s3cret"})
    async with TestClient(TestServer(create_app(guarded, store=store))) as client:
        assert (await client.get("/metrics")).status == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 200


def operation_names(metrics: str) -> set[str]:
    return {line.split('name="')[1].split('"')[0] for line in metrics.splitlines()
            if line.startswith("recograph_graphql_operations_total{")}


async def test_operation_names_cannot_grow_the_metrics_without_bound(client, gql):
    for n in range(150):
        await gql(f"query Name{n} {{ __typename }}")
    names = operation_names(await (await client.get("/metrics")).text())
    assert len(names) <= 101 and "other" in names


async def test_browser_keys_cannot_name_metric_labels(secured, keys):
    """A recommend key is public (it ships in web pages): its callers' operation names
    must not take up the label budget; trusted keys' names do."""
    for key, name in ((keys["acme:recommend"], "BrowserName"), (keys["acme:read"], "ServerName")):
        resp = await secured.post("/graphql", json={"query": f"query {name} {{ __typename }}"},
                                  headers={"Authorization": f"Bearer {key}"})
        assert resp.status == 200
    names = operation_names(await (await secured.get("/metrics")).text())
    assert "ServerName" in names and "BrowserName" not in names and "other" in names


async def test_client_errors_are_logged_in_one_line_without_the_payload(client, gql, caplog):
    big = "x" * 200_000
    with caplog.at_level(logging.DEBUG):
        await gql("query($t: String!) { search(text: $t) { score } }", {"t": big},
                  expect_errors=True)
        await gql("{ nope }", expect_errors=True)
        await client.post("/graphql", data="[" * 5000, headers={"Content-Type": "application/json"})
    records = [r for r in caplog.records if r.name.startswith(("recograph", "strawberry", "gql"))]
    assert not [r for r in records if r.levelno >= logging.ERROR]
    for r in records:
        assert r.exc_info is None and "\n" not in r.getMessage() and big not in r.getMessage()
    assert sum(len(r.getMessage()) for r in records) < 5_000
