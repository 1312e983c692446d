"""/metrics in Prometheus format, request ids, JSON logs."""

from __future__ import annotations

import io
import json
import logging

from recsys_helpers import RECOMMEND, seed

from gql.server.observability import JsonFormatter


async def test_metrics_count_operations_algorithms_models_and_cache(client, gql):
    await seed(gql)
    await gql("query Probe { items(first: 1) { nodes { itemId } } }")
    # named: the default blend's weights are learned, and may leave an algorithm out
    both = [{"name": "collaborative"}, {"name": "item_knn"}]
    await gql(RECOMMEND, {"u": "scifi-fan-1", "n": 5, "a": both})
    await gql(RECOMMEND, {"u": "scifi-fan-2", "n": 5, "a": both})
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


async def test_json_log_lines_carry_the_request_id(client, gql):
    """The access log line of a real request, and a client error logged while it runs,
    both carry the request's id."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())  # formats at emit time, inside the request
    loggers = [logging.getLogger("recograph.access"), logging.getLogger("recograph.errors")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        resp = await client.post("/graphql", json={"query": "{ nope }"},
                                 headers={"X-Request-Id": "req-9"})
        assert resp.status == 200
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    access = [e for e in lines if e["logger"] == "recograph.access"]
    errors = [e for e in lines if e["logger"] == "recograph.errors"]
    assert access and access[0]["request_id"] == "req-9" and access[0]["status"] == 200
    assert access[0]["path"] == "/graphql" and access[0]["level"] == "INFO"
    assert errors and errors[0]["request_id"] == "req-9"


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
