"""The usage publisher on a real NATS: delivery, dedup, outages, spill files and shutdown."""

from __future__ import annotations

import asyncio
import fcntl
import inspect
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from libs.common.bus import Bus, EmbeddedNats
from libs.common.events import (
    MSG_ID_HEADER,
    USAGE_STREAM,
    RelayOutcome,
    UsageEvent,
    decode,
    encode,
)
from services.relay.publisher import UsagePublisher


def usage(request_id: str, quota: int = 5) -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        user_id=1,
        token_id=2,
        token_name="t",
        channel_id=3,
        channel_type=1,
        model="gpt-4o-mini",
        group="default",
        model_ratio=1.0,
        completion_ratio=1.0,
        group_ratio=1.0,
        quota=quota,
        created_at=1_700_000_000,
    )


def outcome(request_id: str) -> RelayOutcome:
    return RelayOutcome(
        request_id=request_id, channel_id=3, channel_type=1, model="m", success=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 10.0, message: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(0.01)


async def stored(bus: Bus) -> list[tuple[str, str]]:
    """(message id, request id) of every message in the usage stream, in stream order."""
    stream = bus.namespace.stream(USAGE_STREAM)
    info = await bus.jetstream.stream_info(stream)
    messages: list[tuple[str, str]] = []
    if info.state.messages == 0:
        return messages
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        message = await bus.jetstream.get_msg(stream, sequence)
        event = decode(message.data or b"", UsageEvent)
        messages.append(((message.headers or {}).get(MSG_ID_HEADER, ""), event.request_id))
    return messages


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def bus(nats_url: str, nats_namespace: str) -> AsyncIterator[Bus]:
    connected = await Bus.connect(nats_url, namespace=nats_namespace, connect_timeout=5)
    await connected.ensure_streams()
    yield connected
    await connected.close()


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    """A NATS of this test's own, on a fixed port so that it can be stopped and restarted."""
    server = EmbeddedNats(tmp_path / "nats-data", port=free_port())
    await server.start()
    yield server
    await server.stop()


# --- delivery ----------------------------------------------------------------------------------


async def test_usage_reaches_the_stream_with_the_request_id_as_message_id(bus: Bus) -> None:
    registry = CollectorRegistry()
    received: list[RelayOutcome] = []

    async def on_outcome(event: RelayOutcome) -> None:
        received.append(event)

    await bus.subscribe(RelayOutcome, on_outcome)
    publisher = UsagePublisher(bus, registry=registry)
    await publisher.start()
    ids = [f"req-{i}" for i in range(40)]
    for request_id in ids:
        publisher.submit_usage(usage(request_id))
        publisher.submit_outcome(outcome(request_id))

    assert await publisher.stop(timeout=10) == 0

    assert await stored(bus) == [(request_id, request_id) for request_id in ids]
    await wait_until(lambda: len(received) == 40, message="the outcomes")
    assert [event.request_id for event in received] == ids
    assert sample(registry, "oneapi_relay_published_total", kind="usage") == 40
    assert sample(registry, "oneapi_relay_published_total", kind="outcome") == 40
    assert sample(registry, "oneapi_relay_publish_buffered", kind="usage") == 0


async def test_a_usage_event_submitted_twice_is_stored_once(bus: Bus) -> None:
    publisher = UsagePublisher(bus)
    await publisher.start()
    publisher.submit_usage(usage("req-1"))
    publisher.submit_usage(usage("req-2"))
    publisher.submit_usage(usage("req-1"))

    assert await publisher.stop(timeout=10) == 0

    assert await stored(bus) == [("req-1", "req-1"), ("req-2", "req-2")]


async def test_stop_flushes_everything_submitted(bus: Bus) -> None:
    publisher = UsagePublisher(bus)
    await publisher.start()
    for i in range(500):
        publisher.submit_usage(usage(f"req-{i}"))

    assert await publisher.stop(timeout=30) == 0

    assert len(await stored(bus)) == 500


def test_submitting_is_not_a_coroutine() -> None:
    assert not inspect.iscoroutinefunction(UsagePublisher.submit_usage)
    assert not inspect.iscoroutinefunction(UsagePublisher.submit_outcome)


# --- outages -----------------------------------------------------------------------------------


async def test_nothing_is_lost_or_duplicated_when_nats_restarts(
    embedded: EmbeddedNats, nats_namespace: str
) -> None:
    bus = await Bus.connect(embedded.url, namespace=nats_namespace, connect_timeout=5)
    registry = CollectorRegistry()
    publisher = UsagePublisher(
        bus, registry=registry, publish_timeout=1.0, retry_initial=0.05, retry_max=0.5
    )
    try:
        await bus.ensure_streams()
        await publisher.start()
        for i in range(30):
            publisher.submit_usage(usage(f"before-{i}"))
        await wait_until(lambda: publisher.pending_usage == 0, message="the first events")

        await embedded.stop()
        await wait_until(lambda: not bus.connected, message="the bus to notice")
        started = time.perf_counter()
        for i in range(70):
            publisher.submit_usage(usage(f"during-{i}"))
        submitting = time.perf_counter() - started
        # A publish waits up to a second for NATS; 70 submits took far less than one.
        assert submitting < 0.1
        await wait_until(
            lambda: sample(registry, "oneapi_relay_publish_retries_total", kind="usage") > 0,
            message="a failed attempt",
        )
        assert publisher.pending_usage == 70

        await embedded.start()
        await wait_until(
            lambda: publisher.pending_usage == 0, timeout=30, message="the buffer to drain"
        )
        assert await publisher.stop(timeout=10) == 0

        messages = await stored(bus)
        expected = {f"before-{i}" for i in range(30)} | {f"during-{i}" for i in range(70)}
        assert len(messages) == 100
        assert {msg_id for msg_id, _ in messages} == expected
        assert all(msg_id == request_id for msg_id, request_id in messages)
    finally:
        await publisher.stop(timeout=1)
        await bus.close()


async def test_stop_while_nats_is_away_saves_what_is_left_for_the_next_start(
    embedded: EmbeddedNats, nats_namespace: str, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "relay"
    bus = await Bus.connect(embedded.url, namespace=nats_namespace, connect_timeout=5)
    try:
        await bus.ensure_streams()
        publisher = UsagePublisher(bus, spill_dir=spill_dir, publish_timeout=0.5)
        await publisher.start()
        await embedded.stop()
        await wait_until(lambda: not bus.connected, message="the bus to notice")
        for i in range(10):
            publisher.submit_usage(usage(f"req-{i}"))

        assert await publisher.stop(timeout=0.3) == 10
        assert len(list(spill_dir.glob("usage-*.jsonl"))) == 1

        await embedded.start()
        await wait_until(lambda: bus.connected, timeout=15, message="the bus to reconnect")
        successor = UsagePublisher(bus, spill_dir=spill_dir)
        await successor.start()
        assert await successor.stop(timeout=10) == 0

        assert await stored(bus) == [(f"req-{i}", f"req-{i}") for i in range(10)]
        assert list(spill_dir.iterdir()) == []
    finally:
        await bus.close()


async def test_stop_without_a_spill_directory_reports_the_loss(
    embedded: EmbeddedNats, nats_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await Bus.connect(embedded.url, namespace=nats_namespace, connect_timeout=5)
    try:
        publisher = UsagePublisher(bus, publish_timeout=0.5)
        await publisher.start()
        await embedded.stop()
        await wait_until(lambda: not bus.connected, message="the bus to notice")
        for i in range(3):
            publisher.submit_usage(usage(f"req-{i}"))

        with caplog.at_level(logging.ERROR, logger="services.relay.publisher"):
            assert await publisher.stop(timeout=0.3) == 3
        assert "3 usage events unpublished: LOST" in caplog.text
    finally:
        # Bus.close() raises while NATS is away (reported): close it connected.
        await embedded.start()
        await wait_until(lambda: bus.connected, timeout=15, message="the bus to reconnect")
        await bus.close()


# --- a full buffer -----------------------------------------------------------------------------


async def test_a_full_buffer_spills_usage_to_disk_and_publishes_it_back_in_order(
    bus: Bus, tmp_path: Path
) -> None:
    registry = CollectorRegistry()
    spill_dir = tmp_path / "relay"
    publisher = UsagePublisher(bus, capacity=10, registry=registry, spill_dir=spill_dir, window=4)
    ids = [f"req-{i}" for i in range(25)]
    for request_id in ids:  # not started: as if NATS were away
        publisher.submit_usage(usage(request_id))

    assert sample(registry, "oneapi_relay_publish_buffered", kind="usage") == 10
    assert sample(registry, "oneapi_relay_publish_on_disk") == 15
    assert sample(registry, "oneapi_relay_publish_spilled_total") == 15
    assert publisher.pending_usage == 25

    await publisher.start()
    publisher.submit_usage(usage("req-25"))  # while draining: behind the spilled ones
    assert await publisher.stop(timeout=10) == 0

    assert await stored(bus) == [(request_id, request_id) for request_id in [*ids, "req-25"]]
    assert list(spill_dir.iterdir()) == []
    assert sample(registry, "oneapi_relay_publish_dropped_total", kind="usage") == 0


async def test_without_a_spill_directory_a_full_buffer_keeps_the_oldest_and_counts_the_loss(
    bus: Bus, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    publisher = UsagePublisher(bus, capacity=5, registry=registry)
    with caplog.at_level(logging.ERROR, logger="services.relay.publisher"):
        for i in range(8):
            publisher.submit_usage(usage(f"req-{i}"))

    assert sample(registry, "oneapi_relay_publish_dropped_total", kind="usage") == 3
    assert "usage event req-5 LOST" in caplog.text
    await publisher.start()
    assert await publisher.stop(timeout=10) == 0
    assert [msg_id for msg_id, _ in await stored(bus)] == [f"req-{i}" for i in range(5)]


async def test_outcomes_give_way_to_usage_when_the_buffer_is_full(bus: Bus) -> None:
    registry = CollectorRegistry()
    publisher = UsagePublisher(bus, capacity=3, registry=registry)
    for i in range(3):
        publisher.submit_outcome(outcome(f"attempt-{i}"))
    publisher.submit_usage(usage("req-1"))  # evicts the oldest outcome
    publisher.submit_outcome(outcome("attempt-3"))  # no room: dropped

    assert sample(registry, "oneapi_relay_publish_dropped_total", kind="outcome") == 2
    assert sample(registry, "oneapi_relay_publish_buffered", kind="outcome") == 2
    await publisher.start()
    assert await publisher.stop(timeout=10) == 0
    assert await stored(bus) == [("req-1", "req-1")]
    assert sample(registry, "oneapi_relay_published_total", kind="outcome") == 2


# --- spill files left by earlier processes -----------------------------------------------------


async def test_a_torn_last_line_of_a_crashed_spill_file_is_skipped(
    bus: Bus, tmp_path: Path
) -> None:
    spill_dir = tmp_path / "relay"
    spill_dir.mkdir()
    whole = encode(usage("req-1")) + b"\n" + encode(usage("req-2")) + b"\n"
    (spill_dir / "usage-1-1.jsonl").write_bytes(whole + encode(usage("req-3"))[:40])

    publisher = UsagePublisher(bus, spill_dir=spill_dir)
    await publisher.start()
    assert await publisher.stop(timeout=10) == 0

    assert [msg_id for msg_id, _ in await stored(bus)] == ["req-1", "req-2"]
    assert list(spill_dir.iterdir()) == []


async def test_a_spill_file_a_live_process_holds_is_left_to_it(bus: Bus, tmp_path: Path) -> None:
    spill_dir = tmp_path / "relay"
    spill_dir.mkdir()
    held = spill_dir / "usage-1-1.jsonl"
    held.write_bytes(encode(usage("req-1")) + b"\n")
    fd = os.open(held, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        publisher = UsagePublisher(bus, spill_dir=spill_dir)
        await publisher.start()
        assert await publisher.stop(timeout=10) == 0
    finally:
        os.close(fd)

    assert await stored(bus) == []
    assert held.exists()


# --- confirmation ------------------------------------------------------------------------------


async def test_a_confirmation_turns_true_once_the_event_is_stored(bus: Bus) -> None:
    publisher = UsagePublisher(bus)
    await publisher.start()
    try:
        assert publisher.submit_usage(usage("plain")) is None  # nobody asked to wait
        waiting = [publisher.submit_usage(usage(f"c-{i}"), confirm=True) for i in range(40)]
        for each in waiting:
            assert each is not None
            assert await asyncio.wait_for(each, 10) is True
        # When the last confirmation turned, every event confirmed before it was in the stream.
        ids = {msg_id for msg_id, _ in await stored(bus)}
        assert {f"c-{i}" for i in range(40)} <= ids
    finally:
        await publisher.stop(timeout=5)


async def test_nobody_waits_for_confirmations_while_nats_is_away(
    embedded: EmbeddedNats, nats_namespace: str, tmp_path: Path
) -> None:
    bus = await Bus.connect(embedded.url, namespace=nats_namespace, connect_timeout=5)
    registry = CollectorRegistry()
    publisher = UsagePublisher(
        bus, registry=registry, spill_dir=tmp_path / "relay", publish_timeout=0.3
    )
    try:
        await bus.ensure_streams()
        await publisher.start()
        await embedded.stop()
        await wait_until(lambda: not bus.connected, message="the bus to notice")
        first = publisher.submit_usage(usage("first"), confirm=True)
        assert first is not None  # not known to fail yet: the caller waits, bounded by itself
        await wait_until(
            lambda: sample(registry, "oneapi_relay_publish_retries_total", kind="usage") > 0,
            message="a failed attempt",
        )
        assert not first.done()
        # Now publishing is known to fail: answer at once, the event stays buffered.
        assert publisher.submit_usage(usage("second"), confirm=True) is None
        assert await publisher.stop(timeout=0.2) == 2
        assert first.done()
        assert first.result() is False  # left memory unpublished (saved for the next start)
    finally:
        await publisher.stop(timeout=0.2)
        await bus.close()
