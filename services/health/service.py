"""The health service's decisions: pure functions from evidence to verdicts and log rows.

`monitor.py` gathers the evidence (tests, balances, relay outcomes), runs the units of work and
publishes; the rules of what to do with the evidence are here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from libs.common.db.models import ChannelStatus, Log, LogType
from libs.common.options import OptionValues
from services.health.rules import disable_reason
from services.health.schemas import ChannelRow, ProbeOutcome, Transition


class Action(Enum):
    DISABLE = "disable"
    ENABLE = "enable"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a piece of evidence asks for, and why."""

    action: Action
    reason: str
    cause: str

    @property
    def expected(self) -> int:
        """The status the channel must have for the verdict to apply."""
        return (
            ChannelStatus.ENABLED if self.action is Action.DISABLE else ChannelStatus.AUTO_DISABLED
        )

    @property
    def new(self) -> int:
        return (
            ChannelStatus.AUTO_DISABLED if self.action is Action.DISABLE else ChannelStatus.ENABLED
        )


def too_slow(outcome: ProbeOutcome, threshold_seconds: float) -> bool:
    """Whether a test took longer than `ChannelDisableThreshold` (0 or less: no limit)."""
    if threshold_seconds <= 0:
        return False
    return outcome.timed_out or outcome.elapsed_ms > threshold_seconds * 1000


def verdict_after_test(
    channel: ChannelRow, outcome: ProbeOutcome, options: OptionValues
) -> Verdict | None:
    """One API's rules after a channel test, with its flaw fixed.

    An enabled channel is disabled (`AutomaticDisableChannelEnabled`) when the error is one of
    the disable rules, or when the test was slower than `ChannelDisableThreshold`, even if it
    succeeded. An automatically disabled channel is enabled again
    (`AutomaticEnableChannelEnabled`) when the test succeeded in time. A manually disabled
    channel is never changed (One API re-enabled those too).
    """
    threshold = options.number("ChannelDisableThreshold")
    slow = too_slow(outcome, threshold)
    if channel.status == ChannelStatus.ENABLED and options.flag("AutomaticDisableChannelEnabled"):
        if not outcome.success:
            reason = disable_reason(
                outcome.status_code, outcome.error_type, outcome.error_code, outcome.message
            )
            if reason is not None:
                return Verdict(Action.DISABLE, reason, "rule")
        if slow:
            seconds = outcome.elapsed_ms / 1000
            reason = f"响应时间 {seconds:.2f}s 超过阈值 {threshold:.2f}s"
            return Verdict(Action.DISABLE, reason, "slow")
    if (
        channel.status == ChannelStatus.AUTO_DISABLED
        and options.flag("AutomaticEnableChannelEnabled")
        and outcome.success
        and not slow
    ):
        seconds = outcome.elapsed_ms / 1000
        return Verdict(Action.ENABLE, f"测试通过，用时 {seconds:.2f}s", "test_passed")
    return None


def success_rate_reason(rate: float, threshold: float) -> str:
    return f"成功率 {rate * 100:.2f}% 低于阈值 {threshold * 100:.2f}%"


def describe_test(outcome: ProbeOutcome) -> str:
    seconds = outcome.elapsed_ms / 1000
    if outcome.success:
        return f"测试成功，模型 {outcome.model}，用时 {seconds:.2f}s"
    return f"测试失败，模型 {outcome.model}，用时 {seconds:.2f}s：{outcome.message}"


def log_of_test(channel: ChannelRow, outcome: ProbeOutcome, at: int) -> Log:
    """The test log (type 5) of one channel test."""
    return Log(
        user_id=0,
        created_at=at,
        type=LogType.TEST,
        content=f"通道「{channel.name}」（#{channel.id}）{describe_test(outcome)}",
        model_name=outcome.model,
        channel_id=channel.id,
        elapsed_time=outcome.elapsed_ms,
    )


def transition_log(transition: Transition) -> Log:
    """The system log (type 4) of an automatic status change."""
    label = f"通道「{transition.name}」（#{transition.channel_id}）"
    if transition.disabled:
        content = f"{label}已被禁用，原因：{transition.reason}"
    else:
        content = f"{label}已被启用（{transition.reason}）"
    return Log(
        user_id=0,
        created_at=transition.at,
        type=LogType.SYSTEM,
        content=content,
        channel_id=transition.channel_id,
    )
