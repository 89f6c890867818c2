"""NATS for the services: one connection per process, and an embedded server when needed.

    bus = await Bus.connect(settings.nats_url, namespace=settings.nats_namespace)
    await bus.ensure_streams()                       # streams and consumers of events.py
    await bus.publish(ConfigChanged(entity="token", ids=[7]))          # core, fan-out
    ack = await bus.publish_durable(usage, msg_id=usage.request_id)    # JetStream
    await bus.subscribe(ConfigChanged, on_config_changed)
    consumer = await bus.pull_consumer(UsageEvent, BILLING_CONSUMER)
    for delivery in await consumer.fetch(batch=100, timeout=1.0):
        ...  # delivery.event or delivery.error; then ack / nak / term / dead_letter
    await bus.serve(ChannelTestRequest, answer_test, queue=HEALTH_QUEUE)  # request/reply
    reply = await bus.request(ChannelTestRequest(channel_ids=[3]), ChannelTestReply)
    await bus.close()                                # drains

Subjects, streams, consumers and schemas are declared in `libs.common.events`, never here.

Exceptions::

    BusError                    NATS refused or could not do what was asked
    ├── BusUnavailable          NATS not reachable now (closed, reconnecting, timed out);
    │                           a retry may succeed: keep the event, retry with the same id
    └── EmbeddedNatsError       the embedded nats-server was not found, or did not start

    EventError                  (libs.common.events) a message or declaration is wrong
    ├── EventDecodeError        bytes are not a valid instance of the schema: never retry;
    │                           `Delivery.error` holds it, billing dead-letters the message
    ├── UndeclaredEventError    no subject carries this type
    └── InvalidNamespaceError   the namespace has characters subjects cannot carry

Decode errors live in `libs.common.events` because decoding does not need a connection
(tools that read dead letters use it too); they are re-exported here for convenience.
"""

from __future__ import annotations

from libs.common.bus.client import Bus, Delivery, PullConsumer
from libs.common.bus.embedded import EmbeddedNats, find_nats_server
from libs.common.bus.errors import BusError, BusUnavailable, EmbeddedNatsError, redact
from libs.common.events import EventDecodeError

__all__ = [
    "Bus",
    "BusError",
    "BusUnavailable",
    "Delivery",
    "EmbeddedNats",
    "EmbeddedNatsError",
    "EventDecodeError",
    "PullConsumer",
    "find_nats_server",
    "redact",
]
