"""The errors `libs.common.bus` raises; every one derives from `BusError`."""

from __future__ import annotations

import re

_USERINFO_RE = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")


class BusError(Exception):
    """Base of the bus errors: NATS refused or could not do what was asked."""


class BusUnavailable(BusError):
    """NATS cannot be reached now (closed, reconnecting, timed out); retrying may succeed."""


class EmbeddedNatsError(BusError):
    """The embedded nats-server could not be found, started or stopped."""


def redact(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by ``***``."""
    return _USERINFO_RE.sub(r"\g<scheme>***@", text)
