"""Bus on the real NATS: streams, durable publishing, fan-out, pull consumers, drain."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid

import pytest
from nats.aio.client import Client
from nats.js import api

from libs.common.bus import Bus, BusError, BusUnavailable, EventDecodeError
from libs.common.events import (
    BILLING_CONSUMER,
    DEAD_DELIVERIES_HEADER,
    DEAD_REASON_HEADER,
    DEAD_SEQUENCE_HEADER,
    MSG_ID_HEADER,
    ConfigChanged,
    QuotaUpdated,
    RelayOutcome,
    UsageEvent,
)
from tests.libs.common.bus.support import BusFactory, wait_until


def usage(request_id: str, quota: int = 10) -> UsageEvent:
    return UsageEvent(
        request_id=request_id,
        user_id=1,
        token_id=2,
        token_name="t",
        channel_id=3,
        channel_type=1,
        model="gpt-4o-mini",
        group="default",
        model_ratio=0.075,
        completion_ratio=4.0,
        group_ratio=1.0,
        quota=quota,
        created_at=1_700_000_000,
        prompt_tokens=10,
        completion_tokens=5,
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- streams -----------------------------------------------------------------------------------


async def test_ensure_streams_creates_the_declared_streams_and_consumer(
    bus: Bus, nats_namespace: str
) -> None:
    await bus.ensure_streams()
    await bus.ensure_streams()  # a second run changes nothing and does not fail

    usage_stream = await bus.jetstream.stream_info(f"{nats_namespace}_USAGE")
    assert usage_stream.config.subjects == [f"{nats_namespace}.usage"]
    assert usage_stream.config.storage == api.StorageType.FILE
    assert usage_stream.config.retention == api.RetentionPolicy.WORK_QUEUE
    assert usage_stream.config.duplicate_window == 600
    dead_stream = await bus.jetstream.stream_info(f"{nats_namespace}_USAGE_DEAD")
    assert dead_stream.config.subjects == [f"{nats_namespace}.usage.dead"]
    consumer = await bus.jetstream.consumer_info(f"{nats_namespace}_USAGE", BILLING_CONSUMER)
    assert consumer.config.durable_name == BILLING_CONSUMER
    assert consumer.config.ack_policy == api.AckPolicy.EXPLICIT
    assert consumer.config.max_deliver == 50
    assert consumer.config.backoff == [30.0, 60.0, 120.0, 300.0, 600.0]
    assert consumer.config.filter_subject == f"{nats_namespace}.usage"


async def test_ensure_streams_from_two_connections_at_once_both_succeed(
    connect_bus: BusFactory, nats_namespace: str
) -> None:
    first, second = await connect_bus(), await connect_bus()

    await asyncio.gather(first.ensure_streams(), second.ensure_streams())
    await asyncio.gather(first.ensure_streams(), second.ensure_streams())

    names = {info.config.name for info in await first.jetstream.streams_info()}
    assert {f"{nats_namespace}_USAGE", f"{nats_namespace}_USAGE_DEAD"} <= names
    consumers = await first.jetstream.consumers_info(f"{nats_namespace}_USAGE")
    assert [info.name for info in consumers] == [BILLING_CONSUMER]


async def test_ensure_streams_brings_an_outdated_stream_to_its_declaration(
    bus: Bus, nats_namespace: str
) -> None:
    await bus.jetstream.add_stream(
        name=f"{nats_namespace}_USAGE",
        subjects=[f"{nats_namespace}.usage"],
        retention=api.RetentionPolicy.WORK_QUEUE,
        storage=api.StorageType.FILE,
        duplicate_window=30,
    )

    await bus.ensure_streams()

    info = await bus.jetstream.stream_info(f"{nats_namespace}_USAGE")
    assert info.config.duplicate_window == 600


async def test_ensure_streams_names_the_stream_it_cannot_update(
    bus: Bus, nats_namespace: str
) -> None:
    await bus.jetstream.add_stream(
        name=f"{nats_namespace}_USAGE",
        subjects=[f"{nats_namespace}.usage"],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
    )

    with pytest.raises(BusError, match=f"{nats_namespace}_USAGE"):
        await bus.ensure_streams()


# --- durable publishing ------------------------------------------------------------------------


async def test_publishing_the_same_message_id_twice_stores_it_once(
    bus: Bus, nats_namespace: str
) -> None:
    await bus.ensure_streams()

    first = await bus.publish_durable(usage("req-1"), msg_id="req-1")
    again = await bus.publish_durable(usage("req-1"), msg_id="req-1")
    other = await bus.publish_durable(usage("req-2"), msg_id="req-2")

    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq
    assert other.seq == first.seq + 1
    assert first.stream == f"{nats_namespace}_USAGE"
    info = await bus.jetstream.stream_info(f"{nats_namespace}_USAGE")
    assert info.state.messages == 2


async def test_durable_publishing_without_the_stream_is_unavailable(bus: Bus) -> None:
    with pytest.raises(BusUnavailable):
        await bus.publish_durable(usage("req-1"), msg_id="req-1", timeout=1)


async def test_each_event_goes_through_its_own_kind_of_publish(bus: Bus) -> None:
    with pytest.raises(BusError, match="publish_durable"):
        await bus.publish(usage("req-1"))
    with pytest.raises(BusError, match="core subject"):
        await bus.publish_durable(ConfigChanged(entity="all"), msg_id="x")


# --- core fan-out ------------------------------------------------------------------------------


async def test_every_subscriber_gets_every_core_event(
    connect_bus: BusFactory, nats_url: str
) -> None:
    publisher, relay_a, relay_b = await connect_bus(), await connect_bus(), await connect_bus()
    other_namespace = await Bus.connect(nats_url, namespace=f"other_{uuid.uuid4().hex[:8]}")
    got_a: list[ConfigChanged] = []
    got_b: list[ConfigChanged] = []
    got_other: list[ConfigChanged] = []

    async def on_a(event: ConfigChanged) -> None:
        got_a.append(event)

    async def on_b(event: ConfigChanged) -> None:
        got_b.append(event)

    async def on_other(event: ConfigChanged) -> None:
        got_other.append(event)

    try:
        await relay_a.subscribe(ConfigChanged, on_a)
        await relay_b.subscribe(ConfigChanged, on_b)
        await other_namespace.subscribe(ConfigChanged, on_other)

        sent = [ConfigChanged(entity="token", ids=[i], keys=[f"sk-{i}"]) for i in range(3)]
        for event in sent:
            await publisher.publish(event)
        await publisher.flush()

        await wait_until(lambda: len(got_a) == 3 and len(got_b) == 3, message="both relays")
        assert got_a == sent
        assert got_b == sent
        await other_namespace.flush()
        assert got_other == [], "another namespace sees nothing"
    finally:
        await other_namespace.close()


async def test_a_subscription_is_live_when_subscribe_returns(connect_bus: BusFactory) -> None:
    # nats-py can send a flush's PING ahead of a buffered SUB; subscribe must not return
    # before the server has the subscription, or the first events are lost.
    publisher, relay = await connect_bus(), await connect_bus()
    received: list[int] = []

    async def on_change(event: ConfigChanged) -> None:
        received.append(event.ids[0])

    for attempt in range(50):
        subscription = await relay.subscribe(ConfigChanged, on_change)
        await publisher.publish(ConfigChanged(entity="channel", ids=[attempt]))
        await wait_until(lambda: attempt in received, message=f"event {attempt}")  # noqa: B023
        await subscription.unsubscribe()

    assert received == list(range(50))


async def test_a_failing_handler_is_logged_and_later_events_still_arrive(
    connect_bus: BusFactory, caplog: pytest.LogCaptureFixture
) -> None:
    publisher, health = await connect_bus(), await connect_bus()
    handled: list[str] = []

    async def on_outcome(event: RelayOutcome) -> None:
        if event.request_id == "boom":
            raise RuntimeError("handler bug")
        handled.append(event.request_id)

    await health.subscribe(RelayOutcome, on_outcome)
    for request_id in ("boom", "ok"):
        await publisher.publish(
            RelayOutcome(
                request_id=request_id, channel_id=1, channel_type=1, model="m", success=True
            )
        )
    await publisher.flush()

    await wait_until(lambda: handled == ["ok"], message="the event after the failure")
    assert any("on_outcome" in r.message and r.exc_info for r in caplog.records)


async def test_a_core_message_that_does_not_decode_is_skipped(
    connect_bus: BusFactory, nats_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    publisher, relay = await connect_bus(), await connect_bus()
    handled: list[QuotaUpdated] = []

    async def on_quota(event: QuotaUpdated) -> None:
        handled.append(event)

    await relay.subscribe(QuotaUpdated, on_quota)
    await publisher.client.publish(f"{nats_namespace}.quota.updated", b"{not json")
    await publisher.publish(QuotaUpdated(request_ids=["r1"]))
    await publisher.flush()

    await wait_until(lambda: len(handled) == 1, message="the valid event")
    assert handled[0].request_ids == ["r1"]
    assert any("invalid QuotaUpdated message" in r.getMessage() for r in caplog.records)


# --- pull consumer -----------------------------------------------------------------------------


async def test_pull_consumer_fetches_acks_and_redelivers_after_nak(bus: Bus) -> None:
    await bus.ensure_streams()
    for request_id in ("r1", "r2", "r3"):
        await bus.publish_durable(usage(request_id), msg_id=request_id)
    consumer = await bus.pull_consumer(UsageEvent, BILLING_CONSUMER)

    batch = await consumer.fetch(batch=10, timeout=2)

    assert [d.event.request_id for d in batch if d.event] == ["r1", "r2", "r3"]
    assert [d.msg_id for d in batch] == ["r1", "r2", "r3"]
    assert all(d.error is None and d.num_delivered == 1 for d in batch)
    await batch[0].ack()
    await batch[1].ack_sync()
    await batch[2].nak()

    again = await consumer.fetch(batch=10, timeout=2)

    assert [d.msg_id for d in again] == ["r3"]
    assert again[0].num_delivered == 2
    assert again[0].event == usage("r3")
    await again[0].ack_sync()
    assert await consumer.fetch(batch=10, timeout=0.3) == []
    info = await consumer.info()
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_a_settled_delivery_cannot_be_settled_again(bus: Bus) -> None:
    await bus.ensure_streams()
    await bus.publish_durable(usage("r1"), msg_id="r1")
    consumer = await bus.pull_consumer(UsageEvent, BILLING_CONSUMER)
    (delivery,) = await consumer.fetch(batch=1, timeout=2)

    await delivery.ack_sync()

    with pytest.raises(BusError, match="already settled"):
        await delivery.nak()


async def test_two_binders_of_the_consumer_share_its_messages(
    connect_bus: BusFactory,
) -> None:
    billing_a, billing_b = await connect_bus(), await connect_bus()
    await billing_a.ensure_streams()
    for i in range(10):
        await billing_a.publish_durable(usage(f"r{i}"), msg_id=f"r{i}")
    consumer_a = await billing_a.pull_consumer(UsageEvent, BILLING_CONSUMER)
    consumer_b = await billing_b.pull_consumer(UsageEvent, BILLING_CONSUMER)

    got_a = await consumer_a.fetch(batch=4, timeout=2)
    got_b = await consumer_b.fetch(batch=10, timeout=2)

    ids = [d.msg_id or "" for d in got_a + got_b]
    assert sorted(ids) == sorted(f"r{i}" for i in range(10))
    assert len(got_a) == 4


async def test_an_undecodable_usage_message_is_dead_lettered_byte_for_byte(
    bus: Bus, nats_namespace: str
) -> None:
    await bus.ensure_streams()
    garbage = b'{"request_id": 42}'
    await bus.jetstream.publish(
        f"{nats_namespace}.usage", garbage, headers={MSG_ID_HEADER: "bad-1"}
    )
    consumer = await bus.pull_consumer(UsageEvent, BILLING_CONSUMER)

    (delivery,) = await consumer.fetch(batch=10, timeout=2)

    assert delivery.event is None
    assert isinstance(delivery.error, EventDecodeError)
    ack = await delivery.dead_letter(f"{delivery.error}\nsecond line")
    assert ack.stream == f"{nats_namespace}_USAGE_DEAD"

    dead = await bus.jetstream.get_msg(f"{nats_namespace}_USAGE_DEAD", ack.seq)
    assert dead.data == garbage
    assert dead.headers is not None
    assert dead.headers[MSG_ID_HEADER] == "bad-1"
    assert dead.headers[DEAD_REASON_HEADER].startswith("invalid UsageEvent message")
    assert "\n" not in dead.headers[DEAD_REASON_HEADER]
    assert dead.headers[DEAD_SEQUENCE_HEADER] == "1"
    assert dead.headers[DEAD_DELIVERIES_HEADER] == "1"
    assert await consumer.fetch(batch=10, timeout=0.3) == [], "terminated: never redelivered"

    async def usage_left() -> int:
        return (await bus.jetstream.stream_info(f"{nats_namespace}_USAGE")).state.messages

    deadline = asyncio.get_running_loop().time() + 5
    while await usage_left() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    assert await usage_left() == 0, "the work queue dropped the dead-lettered message"


async def test_binding_to_a_consumer_that_does_not_exist_says_what_to_do(bus: Bus) -> None:
    with pytest.raises(BusError, match="ensure_streams"):
        await bus.pull_consumer(UsageEvent, BILLING_CONSUMER)


# --- key-value ---------------------------------------------------------------------------------


async def test_key_value_buckets_are_namespaced_and_reopened(
    connect_bus: BusFactory, nats_namespace: str
) -> None:
    first, second = await connect_bus(), await connect_bus()
    with pytest.raises(BusError, match="does not exist"):
        await first.key_value("leases", create=False)

    created = await first.key_value("leases", ttl=60)
    await created.put("billing", b"node-1")
    reopened = await second.key_value("leases")

    entry = await reopened.get("billing")
    assert entry.value == b"node-1"
    assert f"KV_{nats_namespace}_leases" in {
        info.config.name for info in await first.jetstream.streams_info()
    }


# --- connection --------------------------------------------------------------------------------


async def test_close_drains_what_was_published_and_what_arrived(
    connect_bus: BusFactory, nats_url: str, nats_namespace: str
) -> None:
    publisher = await Bus.connect(nats_url, namespace=nats_namespace)
    consumer = await connect_bus()
    gate = asyncio.Event()
    handled: list[int] = []

    async def slow(event: ConfigChanged) -> None:
        await gate.wait()
        handled.append(event.ids[0])

    subscription = await consumer.subscribe(ConfigChanged, slow)
    for i in range(50):
        await publisher.publish(ConfigChanged(entity="channel", ids=[i]))
    await publisher.close()  # no flush: close itself must send everything
    assert not publisher.connected

    await wait_until(lambda: subscription.pending_msgs >= 49, message="messages to arrive")
    closing = asyncio.create_task(consumer.close())
    await asyncio.sleep(0)
    gate.set()
    await asyncio.wait_for(closing, 10)

    assert handled == list(range(50)), "every message that arrived was handled before close"
    assert not consumer.connected
    await consumer.close()  # closing twice is harmless


async def test_connected_reflects_the_connection(bus: Bus) -> None:
    assert bus.connected
    await bus.close()
    assert not bus.connected


async def test_an_unreachable_nats_fails_after_the_deadline_without_leaking_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"nats://oneapi:hunter2secret@127.0.0.1:{closed_port()}"

    with pytest.raises(BusUnavailable) as caught:
        await Bus.connect(url, connect_timeout=0.5)

    assert "hunter2secret" not in str(caught.value)
    assert "nats://***@127.0.0.1" in str(caught.value)
    assert all("hunter2secret" not in record.getMessage() for record in caplog.records)


async def test_the_raw_client_is_a_nats_client(bus: Bus) -> None:
    assert isinstance(bus.client, Client)
    assert bus.namespace.name.startswith("t_")
