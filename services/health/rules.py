"""When a channel leaves rotation: One API's disable rules and the success-rate windows.

Pure functions and in-memory state; the service decides what to do with their verdicts.
"""

from __future__ import annotations

from collections import deque
from typing import Final

DISABLE_TYPES: Final = frozenset(
    {"insufficient_quota", "authentication_error", "permission_error", "forbidden"}
)
DISABLE_CODES: Final = frozenset({"invalid_api_key", "account_deactivated"})
DISABLE_MESSAGES: Final = (
    "your access was terminated",
    "violation of our policies",
    "your credit balance is too low",
    "organization has been disabled",
    "credit",
    "balance",
    "permission denied",
    "organization has been restricted",
    "api key not valid",
    "api key expired",
)

COUNTED_CLIENT_ERRORS: Final = frozenset({401, 402, 403, 408, 429})
"""4xx answers that say something about the channel (its key, its account, its capacity).
Other 4xx answers (400 invalid request, 404 unknown model, 413, 422) are the client's doing and
count neither way in a success-rate window: One API counted them, so a client sending bad
requests could push a healthy channel out of rotation."""


def disable_reason(status_code: int, error_type: str, error_code: str, message: str) -> str | None:
    """Why an upstream error means the channel must be disabled at once, or None.

    One API's rules: HTTP 401; an error type, code or message (case-insensitive substring)
    that says the key or the account is unusable.
    """
    lower = message.lower()
    if (
        status_code == 401
        or error_type in DISABLE_TYPES
        or error_code in DISABLE_CODES
        or any(fragment in lower for fragment in DISABLE_MESSAGES)
    ):
        return describe_error(status_code, error_type, error_code, message)
    return None


def describe_error(status_code: int, error_type: str, error_code: str, message: str) -> str:
    """One line saying what the upstream answered."""
    details = [f"HTTP {status_code}"] if status_code else []
    details += [f"type {error_type}"] if error_type else []
    details += [f"code {error_code}"] if error_code else []
    text = message.strip() or "no message"
    return f"{text} ({', '.join(details)})" if details else text


def counts_as(success: bool, status_code: int) -> bool | None:
    """What an upstream attempt adds to its channel's window: True, False, or None (nothing)."""
    if success:
        return True
    if 400 <= status_code < 500 and status_code not in COUNTED_CLIENT_ERRORS:
        return None
    return False


class SuccessWindows:
    """The last `size` counted outcomes of each channel (One API's METRIC_QUEUE_SIZE)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._windows: dict[int, deque[bool]] = {}
        self._successes: dict[int, int] = {}

    def record(self, channel_id: int, success: bool) -> float:
        """Add an outcome; returns the success rate over what the window now holds."""
        window = self._windows.get(channel_id)
        if window is None:
            window = self._windows[channel_id] = deque(maxlen=self.size)
            self._successes[channel_id] = 0
        if len(window) == self.size and window[0]:
            self._successes[channel_id] -= 1
        window.append(success)
        if success:
            self._successes[channel_id] += 1
        return self._successes[channel_id] / len(window)

    def full(self, channel_id: int) -> bool:
        """Whether the window holds `size` outcomes (only then does a low rate disable)."""
        return len(self._windows.get(channel_id, ())) == self.size

    def rate(self, channel_id: int) -> float | None:
        """The success rate over the window, or None when it is empty."""
        window = self._windows.get(channel_id)
        if not window:
            return None
        return self._successes[channel_id] / len(window)

    def reset(self, channel_id: int) -> None:
        """Start over (the channel changed status: its past no longer counts)."""
        self._windows.pop(channel_id, None)
        self._successes.pop(channel_id, None)

    def reset_all(self) -> None:
        self._windows.clear()
        self._successes.clear()

    def channels(self) -> list[int]:
        return list(self._windows)
