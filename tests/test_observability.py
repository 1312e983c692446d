"""/metrics in Prometheus format, request ids, JSON logs."""

from __future__ import annotations

import json
import logging

from recsys_helpers import RECOMMEND, seed

from gql.server.observability import REQUEST_ID, JsonFormatter


async def test_metrics_count_operations_algorithms_models_and_cache(client, gql):
    await seed(gql)
    await gql("query Probe { items(first: 1) { nodes { itemId } } }")
    await gql(RECOMMEND, {"u": "scifi-fan-1", "n": 5})
    await gql(RECOMMEND, {"u": "scifi-fan-2", "n": 5})
    await gql("query Broken { item(id: 1) { nope } }", expect_errors=True)
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    assert 'recograph_graphql_operations_total{name="Probe",outcome="ok",type="query"} 1.0' \
        in text
    assert 'outcome="error"' in text
    assert 'recograph_graphql_operation_seconds_bucket{le="0.005",type="query"}' in text
    assert 'recograph_algorithm_seconds_count{algorithm="collaborative"} 2.0' in text
    assert 'recograph_models_loaded{algorithm="item_knn"} 1.0' in text
    assert "tenant=" not in text  # tenant names stay out of unauthenticated endpoints
    assert 'recograph_cache_total{cache="candidates",result="hit"}' in text
    assert 'recograph_http_requests_total{path="/graphql",status="200"}' in text


async def test_request_ids_are_echoed_or_made(client):
    resp = await client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    made = (await client.get("/health")).headers["X-Request-Id"]
    assert len(made) == 32


def test_json_log_lines_carry_the_request_id():
    token = REQUEST_ID.set("req-9")
    try:
        record = logging.LogRecord("recograph.access", logging.INFO, __file__, 1, "request",
                                   None, None)
        record.status = 200
        line = json.loads(JsonFormatter().format(record))
    finally:
        REQUEST_ID.reset(token)
    assert line["request_id"] == "req-9" and line["status"] == 200
    assert line["message"] == "request" and line["level"] == "INFO"


async def test_ready_turns_503_while_draining(client):
    assert (await client.get("/ready")).status == 200
    await client.app.shutdown()  # what SIGTERM starts
    resp = await client.get("/ready")
    assert resp.status == 503 and (await resp.json())["draining"] is True
    assert (await client.get("/health")).status == 200  # alive until the end


async def test_opentelemetry_spans_when_enabled(store, settings):
    from aiohttp.test_utils import TestClient, TestServer
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from gql.server.app import create_app

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    traced = settings.model_copy(update={"otel_tracing": True})
    async with TestClient(TestServer(create_app(traced, store=store))) as client:
        resp = await client.post("/graphql", json={
            "query": "query Traced { items(first: 1) { nodes { itemId } } }"})
        assert resp.status == 200
    names = {s.name for s in exporter.get_finished_spans()}
    assert "GraphQL Query: Traced" in names


async def test_shutdown_closes_open_subscriptions(client):
    async with client.ws_connect("/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init"})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { interactionRecorded { userId } }"}})
        await client.app.shutdown()
        while True:
            msg = await ws.receive(timeout=5)
            if msg.type.name in ("CLOSE", "CLOSED", "CLOSING"):
                break
        assert ws.close_code == 1001
