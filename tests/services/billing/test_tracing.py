"""One trace from the client's request through the relay, NATS and billing.

The relay and billing run as two runtimes, each with its own tracer provider (as two processes
would), exporting to the SDK's in-memory exporter through the same `start_tracing` the
runtime uses. The only link between them is the `usage` message on a real NATS: billing's span
for it must be a child of the relay's publish span, in the request's trace.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import func, select

from libs.common import tracing
from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.db.migrations import upgrade
from libs.common.db.models import Log, Option, Token
from libs.common.db.seed import seed_first_start
from libs.common.events import BILLING_CONSUMER, UsageEvent
from libs.common.runtime import Runtime
from libs.common.settings import Settings
from libs.common.tracing import OFF, Tracing, start_tracing
from oneapi.targets import build_registry
from tests.fakes import FakeUpstream, error
from tests.services.billing.support import wait_for
from tests.services.relay.stack import ROOT_TOKEN, SeedChannel, seed_channels

MODEL = "gpt-4"
TOKEN_KEY = "tracedtoken" + "0" * 37
CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"


@dataclass
class Deployment:
    relay: Runtime
    database: Database
    bus: Bus
    exporter: InMemorySpanExporter
    tracings: list[Tracing]

    def client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=f"http://127.0.0.1:{self.relay.http.port}/v1",
            api_key="sk-" + TOKEN_KEY,
            max_retries=0,
        )

    def spans(self) -> list[ReadableSpan]:
        for each in self.tracings:
            assert each.flush(10_000)
        return list(self.exporter.get_finished_spans())


def settings(database_url: str, nats_url: str, namespace: str, data_dir: Path) -> Settings:
    return Settings(
        port=0,
        host="127.0.0.1",
        sql_dsn=database_url,
        nats_url=nats_url,
        nats_namespace=namespace,
        data_dir=data_dir,
        initial_root_token=ROOT_TOKEN,
        batch_update_interval=1,
        shutdown_grace_seconds=5,
    )


async def seeded(config: Settings, upstream: str) -> Database:
    database = Database.from_settings(config)
    await upgrade(database)
    await seed_first_start(database, config)
    await seed_channels(
        database,
        [SeedChannel("first", 1, upstream, [MODEL]), SeedChannel("second", 1, upstream, [MODEL])],
    )
    async with database.session() as session:
        session.add(Option(key="RetryTimes", value="1"))
        session.add(
            Token(
                user_id=1,
                key=TOKEN_KEY,
                name="traced",
                unlimited_quota=True,
                created_time=int(time.time()),
            )
        )
    return database


@pytest.fixture
async def deployment(
    sqlite_url: str, nats_url: str, nats_namespace: str, tmp_path: Path
) -> AsyncIterator[tuple[Deployment, FakeUpstream]]:
    exporter = InMemorySpanExporter()
    relay_tracing = start_tracing(service_name="oneapi-relay", version="t", exporter=exporter)
    billing_tracing = start_tracing(service_name="oneapi-billing", version="t", exporter=exporter)
    async with FakeUpstream("openai") as fake:
        database = await seeded(settings(sqlite_url, nats_url, nats_namespace, tmp_path), fake.url)
        registry = build_registry()
        relay = Runtime(
            settings(sqlite_url, nats_url, nats_namespace, tmp_path / "relay"),
            registry,
            ["relay"],
            version="t",
            tracing=relay_tracing,
        )
        billing = Runtime(
            settings(sqlite_url, nats_url, nats_namespace, tmp_path / "billing"),
            registry,
            ["billing"],
            version="t",
            tracing=billing_tracing,
        )
        bus = await Bus.connect(nats_url, namespace=nats_namespace)
        await billing.start()
        await relay.start()
        try:
            yield Deployment(relay, database, bus, exporter, [relay_tracing, billing_tracing]), fake
        finally:
            await relay.stop()
            await billing.stop()
            await bus.close()
            await database.dispose()
            relay_tracing.shutdown()
            billing_tracing.shutdown()


async def wait_logged(database: Database, count: int) -> None:
    async def logged() -> bool:
        async with database.log_session() as session:
            found = (await session.execute(select(func.count()).select_from(Log))).scalar_one()
        return int(found) >= count

    await wait_for(logged, timeout=30, what=f"billing to log {count} requests")


def one(spans: list[ReadableSpan], **wanted: object) -> ReadableSpan:
    found = [
        span
        for span in spans
        if all(
            (span.name if key == "name" else (span.attributes or {}).get(key)) == value
            for key, value in wanted.items()
        )
    ]
    assert len(found) == 1, (wanted, [(s.name, dict(s.attributes or {})) for s in spans])
    return found[0]


def children(spans: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        span
        for span in spans
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def service_of(span: ReadableSpan) -> object:
    return span.resource.attributes.get("service.name")


async def test_billing_handles_each_usage_message_as_a_child_of_the_relays_span(
    deployment: tuple[Deployment, FakeUpstream],
) -> None:
    stack, fake = deployment
    client = stack.client()
    fake.push(error("server_error"))  # the first attempt of the first request fails: a retry
    plain = await client.chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[{"role": "user", "content": "hello there"}],
        extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
    )
    plain_id = plain.headers["X-Oneapi-Request-Id"]
    streamed = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "stream it"}], stream=True
    )
    streamed_id = streamed.headers["X-Oneapi-Request-Id"]
    async for _ in streamed.parse():
        pass
    await wait_logged(stack.database, 2)

    async def processed() -> bool:
        names = [span.name for span in stack.spans()]
        return names.count("usage process") >= 2

    await wait_for(processed, timeout=10, what="billing's spans to end")
    spans = stack.spans()

    for request_id, attempts in ((plain_id, 2), (streamed_id, 1)):
        request = one(spans, name="POST /v1/chat/completions", **{"oneapi.request_id": request_id})
        assert request.kind == SpanKind.SERVER
        assert service_of(request) == "oneapi-relay"
        attributes = request.attributes or {}
        assert attributes["http.route"] == "/v1/chat/completions"
        assert attributes["http.response.status_code"] == 200
        assert attributes["gen_ai.request.model"] == MODEL

        upstream = [span for span in children(spans, request) if span.name == "upstream chat"]
        assert len(upstream) == attempts
        assert all(span.kind == SpanKind.CLIENT for span in upstream)
        *failed, answered = sorted(upstream, key=lambda span: span.start_time or 0)
        assert (answered.attributes or {})["http.response.status_code"] == 200
        assert attributes["oneapi.channel.id"] == (answered.attributes or {})["oneapi.channel.id"]
        for span in failed:
            assert span.status.status_code == StatusCode.ERROR
            assert (span.attributes or {})["http.response.status_code"] == 500

        publish = one(children(spans, request), name="usage publish")
        assert publish.kind == SpanKind.PRODUCER
        assert (publish.attributes or {})["messaging.message.id"] == request_id

        process = one(spans, name="usage process", **{"oneapi.request_id": request_id})
        assert process.kind == SpanKind.CONSUMER
        assert service_of(process) == "oneapi-billing"
        assert process.parent is not None
        assert process.parent.is_remote  # it came through NATS, not through memory
        assert process.parent.span_id == publish.context.span_id
        assert process.context.trace_id == request.context.trace_id
        assert (process.attributes or {})["oneapi.billing.outcome"] == "charged"
        quota = (process.attributes or {})["oneapi.quota"]
        assert isinstance(quota, int)
        assert quota > 0

    # The caller's traceparent made the relay's span a child of the caller's span.
    request = one(spans, name="POST /v1/chat/completions", **{"oneapi.request_id": plain_id})
    assert request.parent is not None
    assert f"{request.parent.span_id:016x}" == CALLER_SPAN
    assert f"{request.context.trace_id:032x}" == CALLER_TRACE

    # The batch has a span of its own, linked to the messages it settled.
    batches = [span for span in spans if span.name == "usage settle"]
    assert batches
    linked = {link.context.span_id for batch in batches for link in batch.links}
    assert {span.context.span_id for span in spans if span.name == "usage process"} <= linked


async def test_with_otel_unset_nothing_is_traced_and_messages_carry_no_traceparent(
    sqlite_url: str,
    nats_url: str,
    nats_namespace: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)

    def forbidden(name: str) -> None:
        raise AssertionError(f"an exporter ({name}) was built with OTEL_* unset")

    monkeypatch.setattr(tracing, "_build_exporter", forbidden)
    async with FakeUpstream("openai") as fake:
        config = settings(sqlite_url, nats_url, nats_namespace, tmp_path)
        database = await seeded(config, fake.url)
        relay = Runtime(config, build_registry(), ["relay"], version="t")  # its own tracing
        bus = await Bus.connect(nats_url, namespace=nats_namespace)
        await relay.start()
        try:
            assert relay.context.tracing is OFF
            client = openai.AsyncOpenAI(
                base_url=f"http://127.0.0.1:{relay.http.port}/v1",
                api_key="sk-" + TOKEN_KEY,
                max_retries=0,
            )
            await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                extra_headers={"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"},
            )
            consumer = await bus.pull_consumer(UsageEvent, BILLING_CONSUMER)
            deliveries = await consumer.fetch(batch=10, timeout=5)
            await consumer.unsubscribe()
        finally:
            await relay.stop()
            await bus.close()
            await database.dispose()
    assert len(deliveries) == 1
    (delivery,) = deliveries
    assert delivery.event is not None
    assert delivery.msg_id == delivery.event.request_id
    assert "traceparent" not in delivery.headers
    assert "tracestate" not in delivery.headers
