"""Every message the services exchange: subjects, streams, consumers and schemas.

This module is the only place they are defined. Services publish and consume through
`libs.common.bus`, which reads the declarations below; nothing else spells a subject.

Subjects
    ``usage``           JetStream (stream ``USAGE``, durable pull consumer ``billing``): one
                        `UsageEvent` per billable request, ``Nats-Msg-Id`` = request id.
    ``usage.dead``      JetStream (stream ``USAGE_DEAD``): usage messages billing could not
                        decode, kept byte for byte with the reason in a header.
    ``relay.outcome``   core NATS, fan-out: one `RelayOutcome` per upstream attempt.
    ``config.changed``  core NATS, fan-out: `ConfigChanged` after a commit relays must see.
    ``quota.updated``   core NATS, fan-out: `QuotaUpdated` after billing commits a batch.

Requests (core NATS request/reply, served by one member of a queue group)
    ``health.test``     `ChannelTestRequest` -> `ChannelTestReply`: test channels now (admin).
    ``health.balance``  `BalanceRequest` -> `BalanceReply`: refresh channel balances now.

Namespacing
    A namespace ``N`` (setting ``NATS_NAMESPACE``) prefixes everything: subjects become
    ``N.<subject>``, streams ``N_<STREAM>``, key-value buckets ``N_<bucket>``. The empty
    namespace adds no prefix. Tests give each test a namespace and delete its streams after.

Evolution
    Schemas change additively only: a new field always has a default, so older consumers
    (which ignore unknown fields) and newer consumers (which fill in the default) both read
    every message. Renaming, removing or retyping a field, or changing what a value means, is a
    breaking change: it gets a new subject (``usage.v2``) and a new struct, and both are
    published side by side until every consumer has moved. ``version`` says which revision of
    the schema a producer wrote, for logs and for consumers that care.

Wire format: JSON (msgspec), one struct per message, no envelope; the subject names the type.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

import msgspec

# --- errors ------------------------------------------------------------------------------------


class EventError(Exception):
    """Base of the errors raised by this module."""


class EventDecodeError(EventError, ValueError):
    """A message is not a valid instance of the schema it was read as.

    Billing dead-letters a usage message that raises this; it will never decode, so
    redelivering it is pointless.
    """

    def __init__(self, event_type: type[Any], reason: str) -> None:
        super().__init__(f"invalid {event_type.__name__} message: {reason}")
        self.event_type = event_type
        self.reason = reason


class UndeclaredEventError(EventError, TypeError):
    """A type that no subject carries was given where an event was expected."""


class InvalidNamespaceError(EventError, ValueError):
    """A namespace holds characters that subjects or stream names cannot carry."""


# --- schemas -----------------------------------------------------------------------------------

MAX_ERROR_MESSAGE_CHARS: Final = 300
"""`RelayOutcome.error_message` is cut to this length: it is a class of error, not a body."""


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """Base of every message schema. `version` is the schema revision the producer wrote."""

    version: int = 1


class UsageEvent(Event, frozen=True, kw_only=True):
    """One billable request, published by the relay after the response.

    `quota` is what the request costs, computed by the relay from the token counts and
    ratios; `pre_consumed_quota` is what admission reserved before the upstream call. Billing
    charges `quota` once per `request_id` and settles the reservation.
    """

    request_id: str
    user_id: int
    token_id: int
    token_name: str
    username: str = ""
    channel_id: int
    channel_type: int
    model: str
    """The model name sent upstream, after the channel's model mapping."""
    origin_model: str = ""
    """The model name the client asked for, when mapping changed it."""
    group: str
    is_stream: bool = False
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    model_ratio: float
    completion_ratio: float
    group_ratio: float
    quota: int
    pre_consumed_quota: int = 0
    created_at: int
    """Unix seconds at which the request arrived."""
    elapsed_ms: int = 0
    mode: str = "chat"
    """What the request was: one of `USAGE_MODES`, or a newer one an older billing logs as is."""
    content: str = ""
    """The consume log's text (ratios used, notes), as One API writes it."""
    system_prompt_reset: bool = False


USAGE_MODES: Final = frozenset(
    {
        "chat",
        "completion",
        "embedding",
        "moderation",
        "image",
        "edit",
        "audio_speech",
        "audio_transcription",
        "audio_translation",
        "rerank",
        "proxy",
    }
)


class RelayOutcome(Event, frozen=True, kw_only=True):
    """The result of one upstream attempt; health builds success-rate windows from these."""

    request_id: str
    channel_id: int
    channel_type: int
    model: str
    success: bool
    status_code: int = 0
    """The upstream HTTP status; 0 when no response arrived (connect error, timeout)."""
    error_type: str = ""
    error_code: str = ""
    error_message: str = ""
    """Short: cut to `MAX_ERROR_MESSAGE_CHARS` characters."""
    latency_ms: int = 0
    at: float = msgspec.field(default_factory=time.time)
    """Unix seconds at which the attempt ended."""

    def __post_init__(self) -> None:
        if len(self.error_message) > MAX_ERROR_MESSAGE_CHARS:
            short = self.error_message[: MAX_ERROR_MESSAGE_CHARS - 1] + "…"
            msgspec.structs.force_setattr(self, "error_message", short)


ConfigEntity = Literal["channel", "token", "user", "option", "ability", "all"]
CONFIG_ENTITIES: Final[frozenset[str]] = frozenset(
    {"channel", "token", "user", "option", "ability", "all"}
)


class ConfigChanged(Event, frozen=True, kw_only=True):
    """Something relays cache changed in the database; published after the commit.

    `ids` are the changed rows, `keys` what relays index them by besides the id (token keys,
    option names). Empty `ids` and `keys` mean every row of `entity`. `entity` is a plain string
    on the wire (one of `CONFIG_ENTITIES`); a consumer treats a value it does not know as "all".
    """

    entity: str
    ids: list[int] = msgspec.field(default_factory=list)
    keys: list[str] = msgspec.field(default_factory=list)
    at: float = msgspec.field(default_factory=time.time)


class TokenBalance(msgspec.Struct, frozen=True, kw_only=True):
    """A token's quota columns after a billing commit."""

    id: int
    remain_quota: int
    used_quota: int
    status: int


class UserBalance(msgspec.Struct, frozen=True, kw_only=True):
    """A user's quota columns after a billing commit."""

    id: int
    quota: int
    used_quota: int
    request_count: int


class QuotaUpdated(Event, frozen=True, kw_only=True):
    """Billing committed a batch: the new balances it touched and the requests it settled."""

    tokens: list[TokenBalance] = msgspec.field(default_factory=list)
    users: list[UserBalance] = msgspec.field(default_factory=list)
    request_ids: list[str] = msgspec.field(default_factory=list)
    at: float = msgspec.field(default_factory=time.time)


class ChannelTestRequest(Event, frozen=True, kw_only=True):
    """Test channels now (the admin's "test" buttons); answered by one health replica.

    `channel_ids` empty means every channel that is enabled or auto-disabled; with
    `only_disabled` only the auto-disabled ones. `model` overrides each channel's test model.
    Listed channels are tested before the reply; a test of every channel runs in the
    background (the reply says it started) unless `wait` is set.
    """

    channel_ids: list[int] = msgspec.field(default_factory=list)
    only_disabled: bool = False
    model: str = ""
    wait: bool = False


class ChannelTestResult(msgspec.Struct, frozen=True, kw_only=True):
    """One channel's test: what was asked, how long it took, and the channel's status after."""

    channel_id: int
    name: str = ""
    model: str = ""
    success: bool
    message: str = ""
    response_time_ms: int = 0
    status: int = 0
    """The channel's status after the test (1 enabled, 2 manually, 3 automatically disabled)."""


class ChannelTestReply(Event, frozen=True, kw_only=True):
    """`results` of the tests that ran, or `started` when they run in the background."""

    started: bool = False
    message: str = ""
    results: list[ChannelTestResult] = msgspec.field(default_factory=list)


class BalanceRequest(Event, frozen=True, kw_only=True):
    """Refresh balances now: `channel_ids`, or every enabled channel when empty (then in the
    background unless `wait`)."""

    channel_ids: list[int] = msgspec.field(default_factory=list)
    wait: bool = False


class BalanceResult(msgspec.Struct, frozen=True, kw_only=True):
    """One channel's balance refresh; `unsupported` when its type has no balance API."""

    channel_id: int
    name: str = ""
    success: bool
    balance: float = 0.0
    """USD, as stored in `channels.balance`."""
    message: str = ""
    unsupported: bool = False


class BalanceReply(Event, frozen=True, kw_only=True):
    """`results` of the refreshes that ran, or `started` when they run in the background."""

    started: bool = False
    message: str = ""
    results: list[BalanceResult] = msgspec.field(default_factory=list)


E = TypeVar("E", bound=Event)


def encode(event: Event) -> bytes:
    """The JSON bytes of `event`."""
    return msgspec.json.encode(event)


def decode(data: bytes | bytearray | memoryview | str, event_type: type[E]) -> E:
    """Read `data` as `event_type`; raises EventDecodeError when it is not one."""
    decoder: msgspec.json.Decoder[E] = _decoder(event_type)
    try:
        return decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise EventDecodeError(event_type, str(exc)) from None


@functools.cache
def _decoder(event_type: type[Event]) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(event_type)


# --- declarations ------------------------------------------------------------------------------

USAGE: Final = "usage"
USAGE_DEAD: Final = "usage.dead"
RELAY_OUTCOME: Final = "relay.outcome"
CONFIG_CHANGED: Final = "config.changed"
QUOTA_UPDATED: Final = "quota.updated"
HEALTH_TEST: Final = "health.test"
HEALTH_BALANCE: Final = "health.balance"
HEALTH_QUEUE: Final = "health"
"""The queue group health replicas serve requests in: each request reaches one of them."""

USAGE_STREAM: Final = "USAGE"
USAGE_DEAD_STREAM: Final = "USAGE_DEAD"
BILLING_CONSUMER: Final = "billing"

MSG_ID_HEADER: Final = "Nats-Msg-Id"
"""JetStream drops a message whose id it stored within the stream's duplicate window."""
DEAD_REASON_HEADER: Final = "Oneapi-Dead-Reason"
DEAD_SUBJECT_HEADER: Final = "Oneapi-Dead-Subject"
DEAD_SEQUENCE_HEADER: Final = "Oneapi-Dead-Stream-Sequence"
DEAD_DELIVERIES_HEADER: Final = "Oneapi-Dead-Deliveries"


@dataclass(frozen=True)
class SubjectSpec:
    """A subject and the schema it carries; `stream` is None for core NATS (fan-out)."""

    subject: str
    event: type[Event] | None
    """None for subjects that carry raw bytes (dead letters)."""
    stream: str | None = None


@dataclass(frozen=True)
class RequestSpec:
    """A request/reply subject (core NATS): the request's schema and its reply's."""

    subject: str
    request: type[Event]
    reply: type[Event]


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream; `subjects` and `name` are un-namespaced."""

    name: str
    subjects: tuple[str, ...]
    description: str
    retention: Literal["limits", "interest", "workqueue"] = "limits"
    storage: Literal["file", "memory"] = "file"
    duplicate_window: float = 120.0
    """Seconds during which a repeated ``Nats-Msg-Id`` is dropped by the server."""
    max_age: float | None = None
    """Seconds a message is kept; None keeps it until the retention policy removes it."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer with explicit acks."""

    stream: str
    durable: str
    filter_subject: str
    description: str
    backoff: tuple[float, ...]
    """Seconds to wait for an ack after each delivery (the first entry is the ack wait); the
    last entry repeats for later deliveries."""
    max_deliver: int
    max_ack_pending: int = 10_000


SUBJECTS: Final[tuple[SubjectSpec, ...]] = (
    SubjectSpec(USAGE, UsageEvent, USAGE_STREAM),
    SubjectSpec(USAGE_DEAD, None, USAGE_DEAD_STREAM),
    SubjectSpec(RELAY_OUTCOME, RelayOutcome),
    SubjectSpec(CONFIG_CHANGED, ConfigChanged),
    SubjectSpec(QUOTA_UPDATED, QuotaUpdated),
)

REQUESTS: Final[tuple[RequestSpec, ...]] = (
    RequestSpec(HEALTH_TEST, ChannelTestRequest, ChannelTestReply),
    RequestSpec(HEALTH_BALANCE, BalanceRequest, BalanceReply),
)

STREAMS: Final[tuple[StreamSpec, ...]] = (
    # Work-queue retention: a usage message stays on disk until billing acks (or dead-letters)
    # it, however long billing is away, and is deleted right after. No age or size limit: a
    # limit would drop money; a full disk makes publishing fail, and the relay buffers.
    # A work queue allows one consumer per subject: a second reader of usage (audit,
    # analytics) needs a stream of its own sourced from this one (NATS cannot change a
    # stream's retention in place).
    # Duplicate window: the relay retries an unacknowledged publish with the same id while NATS
    # is away; billing's own idempotency (request id) covers anything older.
    StreamSpec(
        name=USAGE_STREAM,
        subjects=(USAGE,),
        description="billable requests, one per request id, consumed by billing",
        retention="workqueue",
        duplicate_window=600.0,
    ),
    StreamSpec(
        name=USAGE_DEAD_STREAM,
        subjects=(USAGE_DEAD,),
        description="usage messages billing could not decode, kept for inspection",
        retention="limits",
        duplicate_window=600.0,
        max_age=30 * 24 * 3600.0,
    ),
)

CONSUMERS: Final[tuple[ConsumerSpec, ...]] = (
    # The first backoff entry is the ack wait: long enough for billing to commit a batch, so a
    # slow commit is not redelivered under it. A nak without delay redelivers at once.
    # Past max_deliver (about eight hours of retries) the server stops delivering the message
    # and publishes a MAX_DELIVERIES advisory; the message stays in the stream (work queue: only
    # an ack removes it) and recreating the consumer delivers it again.
    ConsumerSpec(
        stream=USAGE_STREAM,
        durable=BILLING_CONSUMER,
        filter_subject=USAGE,
        description="billing: charges each usage message once",
        backoff=(30.0, 60.0, 120.0, 300.0, 600.0),
        max_deliver=50,
    ),
)


def subject_spec(event_type: type[Event]) -> SubjectSpec:
    """The declaration of the subject that carries `event_type`."""
    for spec in SUBJECTS:
        if spec.event is event_type:
            return spec
    raise UndeclaredEventError(f"no subject carries {event_type.__name__}")


def request_spec(request_type: type[Event]) -> RequestSpec:
    """The declaration of the request/reply subject that carries `request_type`."""
    for spec in REQUESTS:
        if spec.request is request_type:
            return spec
    raise UndeclaredEventError(f"no request subject carries {request_type.__name__}")


def stream_spec(name: str) -> StreamSpec:
    """The declaration of the stream named `name` (un-namespaced)."""
    for spec in STREAMS:
        if spec.name == name:
            return spec
    raise EventError(f"no stream is declared as {name!r}")


def consumer_spec(stream: str, durable: str) -> ConsumerSpec:
    """The declaration of durable consumer `durable` on stream `stream` (un-namespaced)."""
    for spec in CONSUMERS:
        if spec.stream == stream and spec.durable == durable:
            return spec
    raise EventError(f"no consumer {durable!r} is declared on stream {stream!r}")


# --- namespacing -------------------------------------------------------------------------------

_NAMESPACE_RE: Final = re.compile(r"^[A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class Namespace:
    """Prefixes subjects, streams and buckets so that deployments (and tests) share a NATS."""

    name: str = ""

    def __post_init__(self) -> None:
        if not _NAMESPACE_RE.fullmatch(self.name):
            raise InvalidNamespaceError(
                f"namespace {self.name!r} may hold only letters, digits, '_' and '-'"
            )

    def subject(self, subject: str) -> str:
        """``N.<subject>``, or `subject` itself in the empty namespace."""
        return f"{self.name}.{subject}" if self.name else subject

    def stream(self, stream: str) -> str:
        """``N_<stream>``, or `stream` itself in the empty namespace."""
        return f"{self.name}_{stream}" if self.name else stream

    def bucket(self, bucket: str) -> str:
        """``N_<bucket>``, or `bucket` itself in the empty namespace."""
        return f"{self.name}_{bucket}" if self.name else bucket
