"""The message schemas and declarations of libs/common/events.py."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from libs.common import events
from libs.common.events import (
    CONFIG_ENTITIES,
    CONSUMERS,
    MAX_ERROR_MESSAGE_CHARS,
    STREAMS,
    SUBJECTS,
    ConfigChanged,
    Event,
    EventDecodeError,
    InvalidNamespaceError,
    Namespace,
    QuotaUpdated,
    RelayOutcome,
    TokenBalance,
    UndeclaredEventError,
    UsageEvent,
    UserBalance,
    decode,
    encode,
    subject_spec,
)


def usage_event(**overrides: object) -> UsageEvent:
    fields: dict[str, object] = {
        "request_id": "req-1",
        "user_id": 1,
        "token_id": 2,
        "token_name": "default",
        "username": "root",
        "channel_id": 3,
        "channel_type": 1,
        "model": "gpt-4o-mini",
        "origin_model": "gpt-4o-mini-alias",
        "group": "default",
        "is_stream": True,
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "cached_tokens": 100,
        "reasoning_tokens": 5,
        "model_ratio": 0.075,
        "completion_ratio": 4.0,
        "group_ratio": 1.0,
        "quota": 18,
        "pre_consumed_quota": 20,
        "created_at": 1_700_000_000,
        "elapsed_ms": 812,
        "mode": "chat",
        "content": "模型倍率 0.08，分组倍率 1.00",
        "system_prompt_reset": True,
    }
    fields.update(overrides)
    return UsageEvent(**fields)  # type: ignore[arg-type]


EXAMPLES: list[Event] = [
    usage_event(),
    RelayOutcome(
        request_id="req-1",
        channel_id=3,
        channel_type=1,
        model="gpt-4o-mini",
        success=False,
        status_code=429,
        error_type="upstream_error",
        error_code="rate_limit_exceeded",
        error_message="Rate limit reached",
        latency_ms=150,
        at=1_700_000_000.5,
    ),
    ConfigChanged(entity="token", ids=[1, 2], keys=["sk-abc"], at=1_700_000_001.0),
    QuotaUpdated(
        tokens=[TokenBalance(id=2, remain_quota=980, used_quota=20, status=1)],
        users=[UserBalance(id=1, quota=5000, used_quota=20, request_count=7)],
        request_ids=["req-1", "req-2"],
        at=1_700_000_002.0,
    ),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda event: type(event).__name__)
def test_every_schema_round_trips_through_json(event: Event) -> None:
    data = encode(event)

    assert isinstance(orjson.loads(data), dict)
    assert decode(data, type(event)) == event


def test_usage_event_carries_the_fields_billing_charges() -> None:
    wire = orjson.loads(encode(usage_event()))

    assert wire["version"] == 1
    assert wire["request_id"] == "req-1"
    assert (wire["quota"], wire["pre_consumed_quota"]) == (18, 20)
    assert (wire["prompt_tokens"], wire["completion_tokens"]) == (120, 30)
    assert (wire["cached_tokens"], wire["reasoning_tokens"]) == (100, 5)
    assert (wire["model_ratio"], wire["completion_ratio"], wire["group_ratio"]) == (
        0.075,
        4.0,
        1.0,
    )


def test_schemas_are_frozen() -> None:
    event = usage_event()

    with pytest.raises(AttributeError):
        event.quota = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"[1, 2]",
        b'{"request_id": "r"}',  # required fields missing
        orjson.dumps({**orjson.loads(encode(usage_event())), "quota": "18"}),  # wrong type
        orjson.dumps({**orjson.loads(encode(usage_event())), "user_id": 1.5}),
    ],
    ids=["empty", "not-json", "array", "missing-fields", "quota-as-text", "float-id"],
)
def test_decoding_bad_data_raises_the_decode_error(data: bytes) -> None:
    with pytest.raises(EventDecodeError) as caught:
        decode(data, UsageEvent)

    assert caught.value.event_type is UsageEvent
    assert str(caught.value).startswith("invalid UsageEvent message: ")
    assert "\n" not in str(caught.value)


def test_a_message_with_fields_this_version_does_not_know_still_decodes() -> None:
    newer = {**orjson.loads(encode(usage_event())), "version": 2, "added_later": {"x": 1}}

    event = decode(orjson.dumps(newer), UsageEvent)

    assert event.version == 2
    assert event.request_id == "req-1"


def test_a_message_from_before_an_optional_field_existed_still_decodes() -> None:
    older = orjson.loads(encode(usage_event()))
    for added in ("username", "origin_model", "cached_tokens", "reasoning_tokens", "content"):
        del older[added]

    event = decode(orjson.dumps(older), UsageEvent)

    assert (event.username, event.cached_tokens, event.content) == ("", 0, "")


def test_every_field_added_after_the_first_version_has_a_default() -> None:
    # Additive evolution: every field except the ones a message cannot go without has a
    # default, so a consumer reading an older message keeps working.
    required = {
        UsageEvent: {
            "request_id",
            "user_id",
            "token_id",
            "token_name",
            "channel_id",
            "channel_type",
            "model",
            "group",
            "model_ratio",
            "completion_ratio",
            "group_ratio",
            "quota",
            "created_at",
        },
        RelayOutcome: {"request_id", "channel_id", "channel_type", "model", "success"},
        ConfigChanged: {"entity"},
        QuotaUpdated: set(),
    }
    for event_type, expected in required.items():
        info = msgspec.inspect.type_info(event_type)
        assert isinstance(info, msgspec.inspect.StructType)
        assert {f.name for f in info.fields if f.required} == expected, event_type.__name__


def test_relay_outcome_keeps_only_a_short_error_message() -> None:
    outcome = RelayOutcome(
        request_id="r",
        channel_id=1,
        channel_type=1,
        model="m",
        success=False,
        error_message="x" * 10_000,
    )

    assert len(outcome.error_message) == MAX_ERROR_MESSAGE_CHARS
    decoded = decode(
        orjson.dumps({**orjson.loads(encode(outcome)), "error_message": "y" * 9999}), RelayOutcome
    )
    assert len(decoded.error_message) == MAX_ERROR_MESSAGE_CHARS


def test_config_changed_accepts_an_entity_added_later() -> None:
    assert {"channel", "token", "user", "option", "ability", "all"} == CONFIG_ENTITIES

    event = decode(b'{"entity": "redemption", "ids": [3]}', ConfigChanged)

    assert (event.entity, event.ids, event.keys) == ("redemption", [3], [])


# --- declarations ------------------------------------------------------------------------------


def test_each_event_type_has_exactly_one_subject() -> None:
    assert subject_spec(UsageEvent).subject == "usage"
    assert subject_spec(UsageEvent).stream == "USAGE"
    assert subject_spec(RelayOutcome).subject == "relay.outcome"
    assert subject_spec(ConfigChanged).subject == "config.changed"
    assert subject_spec(QuotaUpdated).subject == "quota.updated"
    for core in (RelayOutcome, ConfigChanged, QuotaUpdated):
        assert subject_spec(core).stream is None
    subjects = [spec.subject for spec in SUBJECTS]
    assert len(subjects) == len(set(subjects))


def test_a_type_no_subject_carries_is_refused() -> None:
    with pytest.raises(UndeclaredEventError):
        subject_spec(TokenBalance)  # type: ignore[arg-type]


def test_usage_is_durable_and_its_dead_letters_have_their_own_stream() -> None:
    streams = {spec.name: spec for spec in STREAMS}
    usage, dead = streams["USAGE"], streams["USAGE_DEAD"]

    assert usage.subjects == ("usage",)
    assert usage.storage == "file"
    assert usage.retention == "workqueue"
    assert usage.duplicate_window >= 120
    assert dead.subjects == ("usage.dead",)
    assert dead.storage == "file"
    # every stream subject is declared, every declared stream subject has its stream
    for spec in SUBJECTS:
        if spec.stream is not None:
            assert spec.subject in streams[spec.stream].subjects
    (billing,) = CONSUMERS
    assert (billing.stream, billing.durable) == ("USAGE", "billing")
    assert billing.filter_subject == "usage"
    assert billing.max_deliver > len(billing.backoff)
    assert billing.backoff[0] >= 10, "the first backoff is the ack wait of a whole batch"


def test_namespace_prefixes_subjects_streams_and_buckets() -> None:
    namespace = Namespace("t_abc")

    assert namespace.subject("usage") == "t_abc.usage"
    assert namespace.subject("relay.outcome") == "t_abc.relay.outcome"
    assert namespace.stream("USAGE") == "t_abc_USAGE"
    assert namespace.bucket("leases") == "t_abc_leases"


def test_the_empty_namespace_adds_nothing() -> None:
    namespace = Namespace()

    assert namespace.subject("usage") == "usage"
    assert namespace.stream("USAGE_DEAD") == "USAGE_DEAD"
    assert namespace.bucket("leases") == "leases"


@pytest.mark.parametrize("name", ["a.b", "a b", "a*", "a>", "ünï"])
def test_a_namespace_subjects_cannot_carry_is_refused(name: str) -> None:
    with pytest.raises(InvalidNamespaceError):
        Namespace(name)


def test_the_module_builds_nothing_at_import() -> None:
    # Declarations are data; no client, connection or logger configuration lives in them.
    assert not any(
        type(value).__module__.startswith(("nats", "redis")) for value in vars(events).values()
    )
