"""The process's one NATS connection: publish, subscribe, pull, streams and key-value."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Final, Generic, TypeVar

import nats.errors
import nats.js.errors
from nats.aio.client import Client, Server
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

from libs.common.bus.errors import BusError, BusUnavailable, redact
from libs.common.bus.streams import consumer_config, stream_config
from libs.common.events import (
    CONSUMERS,
    DEAD_DELIVERIES_HEADER,
    DEAD_REASON_HEADER,
    DEAD_SEQUENCE_HEADER,
    DEAD_SUBJECT_HEADER,
    MSG_ID_HEADER,
    STREAMS,
    USAGE_DEAD,
    USAGE_DEAD_STREAM,
    Event,
    EventDecodeError,
    Namespace,
    consumer_spec,
    decode,
    encode,
    request_spec,
    subject_spec,
)
from libs.common.tracing import TRACEPARENT, TRACESTATE, inject_headers, trace_headers

logger = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
Handler = Callable[[E], Awaitable[None]]

RECONNECT_BASE_DELAY: Final = 0.1
RECONNECT_MAX_DELAY: Final = 5.0
_STREAM_CONFIG_DIFFERS: Final = 10058
_MAX_HEADER_CHARS: Final = 500

# Errors of nats-py that mean "not reachable now": a later retry may succeed.
_UNAVAILABLE: Final = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,
    TimeoutError,
    OSError,
)


def _reconnect_backoff(
    servers: list[Server], _server_info: dict[str, Any]
) -> tuple[Server | None, float]:
    """Pick the least-failed server; wait exponentially longer (with jitter) per failure."""
    server = min(servers, key=lambda candidate: candidate.reconnects)
    exponent = min(server.reconnects, 10)
    delay = min(RECONNECT_MAX_DELAY, RECONNECT_BASE_DELAY * 2**exponent)
    return server, delay * random.uniform(0.5, 1.0)


def _header_value(text: str) -> str:
    return " ".join(text.split())[:_MAX_HEADER_CHARS]


STREAM_CREATE_ATTEMPTS = 4


class Bus:
    """The NATS connection of a process, speaking in the events of `libs.common.events`.

    Build it with `await Bus.connect(url)`; share it across the process; `await close()` on
    shutdown. It reconnects forever: while NATS is away, core publishes are buffered by the
    client and JetStream publishes raise `BusUnavailable` after their timeout.
    """

    def __init__(self, client: Client, namespace: Namespace, url: str) -> None:
        """Use `Bus.connect`; this wraps an already connected client."""
        self._client = client
        self._namespace = namespace
        self._url = url
        self._jetstream = client.jetstream()
        self._pull_consumers: set[PullConsumer[Any]] = set()
        self._answering: set[asyncio.Task[None]] = set()

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        namespace: str = "",
        name: str = "oneapi",
        connect_timeout: float | None = None,
        drain_timeout: float = 10.0,
    ) -> Bus:
        """Connect to NATS at `url` (one URL or a comma-separated list of a cluster's).

        The first connection is retried until it succeeds, or for `connect_timeout` seconds
        when given (then `BusUnavailable`). Later disconnections are retried forever with
        exponential backoff; each is logged, without the credentials of the URL.
        """
        servers = [part.strip() for part in url.split(",") if part.strip()]
        if not servers:
            raise BusError("no NATS URL given")
        ns = Namespace(namespace)
        shown = redact(",".join(servers))
        client = Client()

        async def on_error(exc: Exception) -> None:
            logger.warning("NATS error (%s): %s", shown, redact(str(exc)) or type(exc).__name__)

        async def on_disconnected() -> None:
            if not client.is_closed:
                logger.warning("disconnected from NATS (%s); reconnecting", shown)

        async def on_reconnected() -> None:
            logger.info("reconnected to NATS (%s)", shown)

        async def on_closed() -> None:
            logger.info("NATS connection closed (%s)", shown)

        connecting = client.connect(
            servers=servers,
            name=name,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            closed_cb=on_closed,
            allow_reconnect=True,
            max_reconnect_attempts=-1,
            reconnect_time_wait=1,
            reconnect_to_server_handler=_reconnect_backoff,
            drain_timeout=int(max(1, drain_timeout)),
        )
        try:
            await asyncio.wait_for(connecting, connect_timeout)
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await client.close()
            reason = redact(str(exc)) or type(exc).__name__
            raise BusUnavailable(f"cannot connect to NATS ({shown}): {reason}") from None
        logger.info("connected to NATS (%s), namespace %r", shown, ns.name)
        return cls(client, ns, shown)

    # --- state --------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the connection is up (readiness)."""
        return bool(self._client.is_connected)

    @property
    def namespace(self) -> Namespace:
        """The prefix of this bus's subjects, streams and buckets."""
        return self._namespace

    @property
    def client(self) -> Client:
        """The nats-py client, for what this class does not wrap."""
        return self._client

    @property
    def jetstream(self) -> JetStreamContext:
        """The nats-py JetStream context of the connection."""
        return self._jetstream

    # --- declarations -------------------------------------------------------------------

    async def ensure_streams(self, *, replicas: int = 1) -> None:
        """Create or update every stream and durable consumer declared in events.py.

        Idempotent, and safe when several processes run it at once: an identical creation
        succeeds, and a stream whose configuration differs is updated to the declared one.
        """
        for spec in STREAMS:
            config = stream_config(spec, self._namespace, replicas=replicas)
            await self._ensure_stream(config)
        for consumer in CONSUMERS:
            stream = self._namespace.stream(consumer.stream)
            try:
                await self._jetstream.add_consumer(
                    stream, consumer_config(consumer, self._namespace)
                )
            except nats.js.errors.APIError as exc:
                raise BusError(
                    f"cannot create consumer {consumer.durable} on {stream}: {exc.description}"
                ) from None
            except _UNAVAILABLE as exc:
                raise BusUnavailable(
                    f"cannot create consumer {consumer.durable} on {stream}: {exc!r}"
                ) from None

    async def _ensure_stream(self, config: api.StreamConfig) -> None:
        for attempt in range(1, STREAM_CREATE_ATTEMPTS + 1):
            try:
                await self._jetstream.add_stream(config)
                return
            except nats.js.errors.APIError as exc:
                # Another process may have created it a moment ago: older servers then answer
                # "subjects overlap" rather than "already in use". If it exists now, converge.
                if exc.err_code == _STREAM_CONFIG_DIFFERS or await self._stream_exists(
                    config.name or ""
                ):
                    await self._update_stream(config)
                    return
                if attempt == STREAM_CREATE_ATTEMPTS:
                    reason = exc.description
                    raise BusError(f"cannot create stream {config.name}: {reason}") from None
                # A server busy creating or removing other streams' storage can refuse
                # transiently ("error creating store for stream"); try again shortly.
                logger.warning(
                    "creating stream %s failed (%s); retrying", config.name, exc.description
                )
                await asyncio.sleep(0.2 * attempt)
            except _UNAVAILABLE as exc:
                raise BusUnavailable(f"cannot create stream {config.name}: {exc!r}") from None

    async def _stream_exists(self, name: str) -> bool:
        try:
            await self._jetstream.stream_info(name)
        except nats.js.errors.NotFoundError:
            return False
        return True

    async def _update_stream(self, config: api.StreamConfig) -> None:
        try:
            await self._jetstream.update_stream(config)
        except nats.js.errors.APIError as exc:
            raise BusError(
                f"stream {config.name} exists with a configuration that cannot become the "
                f"declared one: {exc.description}"
            ) from None
        logger.info("updated stream %s to its declared configuration", config.name)

    # --- publishing ---------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        """Publish `event` on its core subject (fan-out to every subscriber, no storage).

        The active span's trace context, if any, travels in the headers (``traceparent``).
        """
        spec = subject_spec(type(event))
        if spec.stream is not None:
            raise BusError(f"{type(event).__name__} goes to a stream: use publish_durable")
        try:
            await self._client.publish(
                self._namespace.subject(spec.subject), encode(event), headers=trace_headers()
            )
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot publish {spec.subject}: {exc!r}") from None

    async def publish_durable(
        self,
        event: Event,
        *,
        msg_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109 - the JetStream request's own deadline
    ) -> api.PubAck:
        """Store `event` in its stream; `msg_id` makes a retry within the window a no-op.

        Returns the server's acknowledgement: ``ack.duplicate`` is True when a message with
        this id was already stored. Raises `BusUnavailable` when no acknowledgement came
        (the caller keeps the event and retries with the same id). The active span's trace
        context, if any, is stored with the message (``traceparent`` header).
        """
        spec = subject_spec(type(event))
        if spec.stream is None:
            raise BusError(f"{type(event).__name__} is a core subject: use publish")
        headers = {MSG_ID_HEADER: msg_id}
        inject_headers(headers)
        data = encode(event)
        return await self._publish_stored(spec.subject, spec.stream, data, headers, timeout)

    async def _publish_stored(
        self,
        subject: str,
        stream: str,
        data: bytes,
        headers: dict[str, str],
        timeout: float,  # noqa: ASYNC109 - the JetStream request's own deadline
    ) -> api.PubAck:
        try:
            return await self._jetstream.publish(
                self._namespace.subject(subject),
                data,
                timeout=timeout,
                stream=self._namespace.stream(stream),
                headers=headers,
            )
        except nats.js.errors.APIError as exc:
            raise BusError(f"{subject} rejected: {exc.description}") from None
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot publish {subject}: {exc!r}") from None

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - nats-py's deadline
        """Wait until the server has processed everything sent so far (publishes, subscribes)."""
        try:
            await self._write_buffered()
            await self._client.flush(timeout=int(max(1, timeout)))
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot flush: {exc!r}") from None

    async def _write_buffered(self) -> None:
        """Hand every buffered command to the socket.

        nats-py (2.16) writes a flush's PING straight to the socket while SUB and PUB
        commands may still wait in its buffer for its flusher task: the PONG could then come
        back before the server saw them, and a subscriber missed the first messages.
        """
        write_pending = getattr(self._client, "_flush_pending", None)
        if write_pending is not None:
            await write_pending(force_flush=True)
        else:  # pragma: no cover - another nats-py: let its flusher task run first
            await asyncio.sleep(0)

    # --- consuming ----------------------------------------------------------------------

    async def subscribe(
        self, event_type: type[E], handler: Handler[E], *, queue: str = ""
    ) -> Subscription:
        """Call `handler` with every `event_type` published on its core subject.

        Every subscription gets every message (fan-out) unless a `queue` group is named.
        A message that does not decode, and a handler that raises, are logged and skipped;
        messages of one subscription are handled one at a time, in order. When connected, it
        returns once the server has the subscription: anything published after that arrives.
        """
        spec = subject_spec(event_type)
        if spec.stream is not None:
            raise BusError(f"{event_type.__name__} goes to a stream: use pull_consumer")
        subject = self._namespace.subject(spec.subject)

        async def on_message(msg: Msg) -> None:
            try:
                event = decode(msg.data, event_type)
            except EventDecodeError as exc:
                logger.warning("dropped a message on %s: %s", subject, exc)
                return
            try:
                await handler(event)
            except Exception:
                logger.exception("handler %s failed on %s", _name_of(handler), subject)

        try:
            subscription = await self._client.subscribe(subject, queue=queue, cb=on_message)
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot subscribe to {subject}: {exc!r}") from None
        if self.connected:
            try:
                await self.flush()
            except BusUnavailable:
                # Disconnected meanwhile: the client subscribes again when it reconnects.
                logger.warning("subscribed to %s while NATS is away", subject)
        return subscription

    async def pull_consumer(self, event_type: type[E], durable: str) -> PullConsumer[E]:
        """Bind to the declared durable consumer `durable` of `event_type`'s stream.

        The consumer must exist (`ensure_streams`); several processes may bind to it and
        share its messages.
        """
        spec = subject_spec(event_type)
        if spec.stream is None:
            raise BusError(f"{event_type.__name__} is a core subject: use subscribe")
        declared = consumer_spec(spec.stream, durable)
        stream = self._namespace.stream(declared.stream)
        try:
            await self._jetstream.consumer_info(stream, durable)
            subscription = await self._jetstream.pull_subscribe_bind(durable=durable, stream=stream)
        except nats.js.errors.NotFoundError:
            raise BusError(
                f"consumer {durable} of stream {stream} does not exist: run ensure_streams"
            ) from None
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot bind to consumer {durable}: {exc!r}") from None
        consumer = PullConsumer(self, subscription, event_type, stream, durable)
        self._pull_consumers.add(consumer)
        return consumer

    # --- requests -----------------------------------------------------------------------

    async def serve(
        self,
        request_type: type[E],
        handler: Callable[[E], Awaitable[Event]],
        *,
        queue: str,
    ) -> Subscription:
        """Answer each `request_type` request on its subject with what `handler` returns.

        Processes that serve with the same `queue` share the requests: each reaches one of
        them. Every request is handled in a task of its own, so a slow one holds up no other.
        A request that does not decode, a handler that raises and a reply of the wrong type
        are logged and get no answer (the requester times out); handlers should answer their
        own failures in the reply.
        """
        spec = request_spec(request_type)
        subject = self._namespace.subject(spec.subject)

        async def answer(msg: Msg) -> None:
            try:
                request = decode(msg.data, request_type)
            except EventDecodeError as exc:
                logger.warning("dropped a request on %s: %s", subject, exc)
                return
            try:
                reply = await handler(request)
            except Exception:
                logger.exception("handler %s failed on %s", _name_of(handler), subject)
                return
            if not isinstance(reply, spec.reply):
                logger.error(
                    "handler %s answered %s with %s, not %s",
                    _name_of(handler),
                    subject,
                    type(reply).__name__,
                    spec.reply.__name__,
                )
                return
            if not msg.reply:
                return
            try:
                await msg.respond(encode(reply))
            except _UNAVAILABLE as exc:
                logger.warning("cannot answer a request on %s: %r", subject, exc)

        async def on_message(msg: Msg) -> None:
            task = asyncio.create_task(answer(msg), name=f"answer {spec.subject}")
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)

        try:
            subscription = await self._client.subscribe(subject, queue=queue, cb=on_message)
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot serve {subject}: {exc!r}") from None
        if self.connected:
            try:
                await self.flush()
            except BusUnavailable:
                logger.warning("serving %s while NATS is away", subject)
        return subscription

    async def request(
        self,
        request: Event,
        reply_type: type[E],
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the NATS request's own deadline
    ) -> E:
        """Send `request` on its subject and return the reply of one server.

        Raises `BusUnavailable` when nobody serves the subject or no reply came in time, and
        `EventDecodeError` when the reply is not a `reply_type`.
        """
        spec = request_spec(type(request))
        if spec.reply is not reply_type:
            raise BusError(
                f"{type(request).__name__} is answered with {spec.reply.__name__}, "
                f"not {reply_type.__name__}"
            )
        subject = self._namespace.subject(spec.subject)
        try:
            msg = await self._client.request(subject, encode(request), timeout=timeout)
        except nats.errors.NoRespondersError:
            raise BusUnavailable(f"nothing serves {spec.subject}") from None
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"no answer on {spec.subject}: {exc!r}") from None
        return decode(msg.data, reply_type)

    # --- key-value ----------------------------------------------------------------------

    async def key_value(
        self, bucket: str, *, create: bool = True, ttl: float | None = None, history: int = 1
    ) -> KeyValue:
        """The key-value bucket `bucket` (namespaced), created with these settings if absent."""
        name = self._namespace.bucket(bucket)
        try:
            try:
                return await self._jetstream.key_value(name)
            except nats.js.errors.BucketNotFoundError:
                if not create:
                    raise BusError(f"key-value bucket {name} does not exist") from None
            return await self._jetstream.create_key_value(
                api.KeyValueConfig(
                    bucket=name, ttl=ttl, history=history, storage=api.StorageType.FILE
                )
            )
        except nats.js.errors.APIError as exc:
            raise BusError(f"cannot open key-value bucket {name}: {exc.description}") from None
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot open key-value bucket {name}: {exc!r}") from None

    # --- shutdown -----------------------------------------------------------------------

    async def close(self) -> None:
        """Drain: stop receiving, finish handling what arrived, flush publishes, close."""
        if self._client.is_closed:
            return
        # A pull subscription is not drained: what it fetched and did not settle is
        # redelivered anyway, and a late status reply to a finished fetch would hold the
        # drain until its timeout.
        for consumer in list(self._pull_consumers):
            await consumer.unsubscribe()
        try:
            await self._client.drain()
        except Exception as exc:
            logger.warning("draining NATS failed (%s); closing", redact(str(exc)) or repr(exc))
            # With the server gone, closing can fail on the dead socket too; nothing is left to do.
            with contextlib.suppress(Exception):
                await self._client.close()
        # Requests still being answered can no longer be answered.
        answering = list(self._answering)
        for task in answering:
            task.cancel()
        await asyncio.gather(*answering, return_exceptions=True)


class Delivery(Generic[E]):
    """One message fetched from a durable consumer, decoded or not.

    Exactly one of `event` and `error` is set. Settle it with one of `ack`, `ack_sync`,
    `nak`, `term` or `dead_letter`; an unsettled delivery is redelivered after the ack wait.
    """

    __slots__ = ("_bus", "error", "event", "msg")

    def __init__(self, bus: Bus, msg: Msg, event: E | None, error: EventDecodeError | None) -> None:
        self._bus = bus
        self.msg = msg
        self.event = event
        self.error = error

    @property
    def data(self) -> bytes:
        """The raw message, as published."""
        return self.msg.data

    @property
    def msg_id(self) -> str | None:
        """The publisher's ``Nats-Msg-Id`` (the request id, for usage)."""
        return (self.msg.headers or {}).get(MSG_ID_HEADER)

    @property
    def headers(self) -> dict[str, str]:
        """The message's headers as published (``Nats-Msg-Id``, ``traceparent``, ...)."""
        return self.msg.headers or {}

    @property
    def num_delivered(self) -> int:
        """How many times the server has delivered this message, this time included."""
        return self.msg.metadata.num_delivered

    @property
    def stream_sequence(self) -> int:
        """The message's position in its stream."""
        return self.msg.metadata.sequence.stream

    async def ack(self) -> None:
        """Done: the server removes the message (fire and forget)."""
        await self._settle(self.msg.ack())

    async def ack_sync(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - nats-py's
        """Done, and wait until the server confirms it recorded the ack."""
        await self._settle(self.msg.ack_sync(timeout=timeout))

    async def nak(self, delay: float | None = None) -> None:
        """Not done: redeliver now, or after `delay` seconds."""
        await self._settle(self.msg.nak(delay=delay))

    async def in_progress(self) -> None:
        """Still working on it: restart the ack wait."""
        await self._settle(self.msg.in_progress())

    async def term(self) -> None:
        """Never redeliver this message."""
        await self._settle(self.msg.term())

    async def dead_letter(
        self,
        reason: str,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the JetStream request's own deadline
    ) -> api.PubAck:
        """Store the raw message on ``usage.dead`` with `reason`, then `term` it.

        The copy keeps the original bytes; headers carry the reason, the original subject,
        stream sequence and delivery count. Its message id is the original one, so doing
        this twice (a lost term) stores one copy.
        """
        headers = {
            MSG_ID_HEADER: self.msg_id or f"{self.msg.metadata.stream}:{self.stream_sequence}",
            DEAD_REASON_HEADER: _header_value(reason) or "unspecified",
            DEAD_SUBJECT_HEADER: self.msg.subject,
            DEAD_SEQUENCE_HEADER: str(self.stream_sequence),
            DEAD_DELIVERIES_HEADER: str(self.num_delivered),
        }
        for name in (TRACEPARENT, TRACESTATE):  # the copy stays in the publisher's trace
            if name in self.headers:
                headers[name] = self.headers[name]
        ack = await self._bus._publish_stored(
            USAGE_DEAD, USAGE_DEAD_STREAM, self.msg.data, headers, timeout
        )
        await self.term()
        return ack

    @staticmethod
    async def _settle(action: Awaitable[Any]) -> None:
        try:
            await action
        except nats.errors.MsgAlreadyAckdError:
            raise BusError("message already settled") from None
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot settle message: {exc!r}") from None


class PullConsumer(Generic[E]):
    """Fetches batches from a durable JetStream consumer; see `Bus.pull_consumer`."""

    def __init__(
        self,
        bus: Bus,
        subscription: JetStreamContext.PullSubscription,
        event_type: type[E],
        stream: str,
        durable: str,
    ) -> None:
        self._bus = bus
        self._subscription = subscription
        self._event_type = event_type
        self.stream = stream
        self.durable = durable

    async def fetch(
        self,
        batch: int = 100,
        timeout: float = 1.0,  # noqa: ASYNC109 - sent to the server as the pull's expiry
    ) -> list[Delivery[E]]:
        """Up to `batch` messages, waiting at most `timeout` seconds for the first; [] if none."""
        try:
            msgs = await self._subscription.fetch(batch, timeout=timeout)
        except TimeoutError:  # nats.errors.TimeoutError derives from it
            return []
        except nats.js.errors.APIError as exc:
            raise BusError(f"cannot fetch from {self.durable}: {exc.description}") from None
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot fetch from {self.durable}: {exc!r}") from None
        deliveries: list[Delivery[E]] = []
        for msg in msgs:
            try:
                event = decode(msg.data, self._event_type)
            except EventDecodeError as exc:
                deliveries.append(Delivery(self._bus, msg, None, exc))
            else:
                deliveries.append(Delivery(self._bus, msg, event, None))
        return deliveries

    async def info(self) -> api.ConsumerInfo:
        """The server's view of the consumer: pending, ack-pending, redelivered counts."""
        try:
            return await self._subscription.consumer_info()
        except _UNAVAILABLE as exc:
            raise BusUnavailable(f"cannot read consumer {self.durable}: {exc!r}") from None

    async def unsubscribe(self) -> None:
        """Stop fetching; the durable consumer and its messages stay on the server."""
        self._bus._pull_consumers.discard(self)
        try:
            await self._subscription.unsubscribe()
        except (nats.errors.ConnectionClosedError, nats.errors.BadSubscriptionError):
            return


def _name_of(handler: Callable[..., Any]) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)
