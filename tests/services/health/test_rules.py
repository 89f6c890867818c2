"""One API's disable rules, the success-rate windows and the verdicts after a test."""

from __future__ import annotations

import pytest

from libs.common.db.models import ChannelStatus
from libs.common.options import OptionValues
from services.health.probe import pick_test_model
from services.health.rules import SuccessWindows, counts_as, disable_reason
from services.health.schemas import ChannelRow, ProbeOutcome
from services.health.service import Action, verdict_after_test


@pytest.mark.parametrize(
    ("status", "error_type", "code", "message"),
    [
        (401, "invalid_request_error", "", "Incorrect API key provided"),
        (429, "insufficient_quota", "insufficient_quota", "You exceeded your current quota"),
        (400, "authentication_error", "", "bad key"),
        (403, "permission_error", "", "nope"),
        (403, "forbidden", "", "nope"),
        (400, "invalid_request_error", "invalid_api_key", "x"),
        (400, "invalid_request_error", "account_deactivated", "x"),
        (400, "", "", "Your access was terminated due to violation of our policies"),
        (400, "", "", "This request is a VIOLATION OF OUR POLICIES"),
        (400, "", "", "Your credit balance is too low to access the Anthropic API."),
        (403, "", "", "The organization has been disabled."),
        (402, "", "", "Insufficient credit"),
        (400, "", "", "account balance not enough"),
        (403, "", "", "Permission denied: consumer has no access"),
        (403, "", "", "This organization has been restricted"),
        (400, "", "", "API key not valid. Please pass a valid API key."),
        (400, "", "", "API key expired. Please renew the API key."),
    ],
)
def test_every_one_api_rule_disables(status: int, error_type: str, code: str, message: str) -> None:
    reason = disable_reason(status, error_type, code, message)
    assert reason is not None
    assert message.strip() in reason


@pytest.mark.parametrize(
    ("status", "error_type", "code", "message"),
    [
        (500, "server_error", "", "The server had an error"),
        (429, "requests", "rate_limit_exceeded", "Rate limit reached"),
        (400, "invalid_request_error", "context_length_exceeded", "maximum context length"),
        (404, "invalid_request_error", "model_not_found", "The model does not exist"),
        (502, "upstream_error", "upstream_unreachable", "upstream unreachable: ClientError"),
    ],
)
def test_ordinary_failures_do_not_disable(
    status: int, error_type: str, code: str, message: str
) -> None:
    assert disable_reason(status, error_type, code, message) is None


def test_client_mistakes_do_not_count_against_a_channel() -> None:
    assert counts_as(True, 200) is True
    assert counts_as(False, 500) is False
    assert counts_as(False, 0) is False  # no answer at all
    assert counts_as(False, 429) is False
    assert counts_as(False, 401) is False
    assert counts_as(False, 400) is None
    assert counts_as(False, 404) is None
    assert counts_as(False, 413) is None


def test_success_window_slides_and_is_full_only_at_its_size() -> None:
    windows = SuccessWindows(4)
    assert windows.rate(1) is None
    assert windows.record(1, False) == 0.0
    assert windows.record(1, True) == 0.5
    assert windows.record(1, True) == pytest.approx(2 / 3)
    assert not windows.full(1)
    assert windows.record(1, True) == 0.75
    assert windows.full(1)
    assert windows.record(1, True) == 1.0  # the first failure slid out
    assert windows.record(1, False) == 0.75
    windows.record(2, False)
    windows.reset(1)
    assert windows.rate(1) is None
    assert windows.rate(2) == 0.0
    windows.reset_all()
    assert windows.channels() == []


def channel(status: int = ChannelStatus.ENABLED, **fields: object) -> ChannelRow:
    return ChannelRow(
        **{"id": 7, "type": 1, "name": "c", "status": status, "key": "k", "base_url": "u", **fields}  # type: ignore[arg-type]
    )


ON = OptionValues(
    {
        "AutomaticDisableChannelEnabled": "true",
        "AutomaticEnableChannelEnabled": "true",
        "ChannelDisableThreshold": "2",
    }
)
OFF = OptionValues({"ChannelDisableThreshold": "2"})


def test_a_slow_test_disables_only_with_automatic_disable() -> None:
    slow = ProbeOutcome("m", True, 2500)
    verdict = verdict_after_test(channel(), slow, ON)
    assert verdict is not None
    assert verdict.action is Action.DISABLE
    assert verdict.cause == "slow"
    assert "2.50s" in verdict.reason
    assert verdict_after_test(channel(), slow, OFF) is None
    assert verdict_after_test(channel(), ProbeOutcome("m", True, 1500), ON) is None
    no_limit = OptionValues(
        {"AutomaticDisableChannelEnabled": "true", "ChannelDisableThreshold": "0"}
    )
    assert verdict_after_test(channel(), slow, no_limit) is None


def test_a_failed_test_disables_on_the_rules_only() -> None:
    unauthorized = ProbeOutcome("m", False, 100, "Incorrect API key", status_code=401)
    verdict = verdict_after_test(channel(), unauthorized, ON)
    assert verdict is not None
    assert verdict.cause == "rule"
    server_error = ProbeOutcome("m", False, 100, "oops", status_code=500)
    assert verdict_after_test(channel(), server_error, ON) is None


def test_only_automatically_disabled_channels_come_back() -> None:
    passed = ProbeOutcome("m", True, 300)
    verdict = verdict_after_test(channel(ChannelStatus.AUTO_DISABLED), passed, ON)
    assert verdict is not None
    assert verdict.action is Action.ENABLE
    assert verdict_after_test(channel(ChannelStatus.MANUALLY_DISABLED), passed, ON) is None
    assert verdict_after_test(channel(ChannelStatus.AUTO_DISABLED), passed, OFF) is None
    slow = ProbeOutcome("m", True, 2500)
    assert verdict_after_test(channel(ChannelStatus.AUTO_DISABLED), slow, ON) is None
    failed = ProbeOutcome("m", False, 100, "oops", status_code=500)
    assert verdict_after_test(channel(ChannelStatus.AUTO_DISABLED), failed, ON) is None


def test_the_test_model_is_the_operators_or_the_first_chat_model() -> None:
    plain = channel(models=("text-embedding-3-small", "gpt-4o-mini", "gpt-4o"))
    assert pick_test_model(plain) == "gpt-4o-mini"
    assert pick_test_model(plain, "gpt-4o") == "gpt-4o"
    chosen = channel(models=("gpt-4o",), config={"test_model": "gpt-4.1-nano"})
    assert pick_test_model(chosen) == "gpt-4.1-nano"
    assert pick_test_model(channel(models=("whisper-1",))) == "whisper-1"
    assert pick_test_model(channel(), defaults=("dall-e-3", "claude-3-haiku")) == "claude-3-haiku"
    assert pick_test_model(channel()) == "gpt-3.5-turbo"
