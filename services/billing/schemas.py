"""What billing accepts from the usage stream, and the shapes it hands around a batch."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

from libs.common.events import TokenBalance, UsageEvent, UserBalance

MAX_REQUEST_ID_CHARS: Final = 64
"""`settled_requests.request_id` and `logs.request_id` are VARCHAR(64)."""
MAX_QUOTA: Final = 2**53
"""One request's quota stays below this (the relay's ledger compares amounts as doubles)."""
MAX_TOKENS: Final = 2**31 - 1
"""Token counts are INT columns in `logs`."""


def invalid_reason(event: UsageEvent) -> str | None:
    """Why `event` cannot be charged, or None when it can.

    A message that fails here never becomes chargeable by being redelivered: billing
    dead-letters it instead of letting it block the consumer.
    """
    if not event.request_id or not event.request_id.strip():
        return "request_id is empty"
    if len(event.request_id) > MAX_REQUEST_ID_CHARS:
        return f"request_id is longer than {MAX_REQUEST_ID_CHARS} characters"
    for name, value in (
        ("user_id", event.user_id),
        ("token_id", event.token_id),
        ("channel_id", event.channel_id),
    ):
        if value <= 0:
            return f"{name} is missing (got {value})"
        if value > MAX_TOKENS:
            return f"{name} {value} is out of range"
    if event.quota < 0:
        return f"quota is negative ({event.quota})"
    if event.quota >= MAX_QUOTA:
        return f"quota {event.quota} is out of range"
    for name, count in (
        ("prompt_tokens", event.prompt_tokens),
        ("completion_tokens", event.completion_tokens),
        ("cached_tokens", event.cached_tokens),
        ("reasoning_tokens", event.reasoning_tokens),
    ):
        if not 0 <= count <= MAX_TOKENS:
            return f"{name} is out of range ({count})"
    for name, ratio in (
        ("model_ratio", event.model_ratio),
        ("completion_ratio", event.completion_ratio),
        ("group_ratio", event.group_ratio),
    ):
        if not math.isfinite(ratio) or ratio < 0:
            return f"{name} is not a non-negative number ({ratio})"
    if event.created_at < 0 or event.elapsed_ms < 0:
        return "created_at and elapsed_ms must not be negative"
    return None


@dataclass(frozen=True, slots=True)
class UserCharge:
    """A user's spend in one batch: its quota before and after (for reminders)."""

    user_id: int
    quota_before: int
    quota_after: int
    email: str


@dataclass
class Settlement:
    """What one batch's main transaction did.

    `charged` are the events charged now; `already_settled` the request ids an earlier
    transaction charged (with `log_pending` telling whether their log may still be owed).
    """

    charged: list[UsageEvent] = field(default_factory=list)
    already_settled: dict[str, bool] = field(default_factory=dict)
    tokens: list[TokenBalance] = field(default_factory=list)
    users: list[UserBalance] = field(default_factory=list)
    user_charges: list[UserCharge] = field(default_factory=list)

    @property
    def quota(self) -> int:
        """The quota charged by this transaction."""
        return sum(event.quota for event in self.charged)
