"""Upstream adaptors: what to send a provider for an OpenAI-format request, and how to read
what comes back (see `libs.providers.base` for the interface).

    adaptors = Adaptors.from_settings(settings)       # once per process
    adaptor = adaptors.for_type(channel.type)
    response = await adaptor.open(http, channel, request)

Exceptions (every one derives from `ProviderError`)::

    ProviderError
    ├── UpstreamError                 the upstream answered with an error (OpenAI's terms:
    │                                 status_code, message, type, code, param)
    ├── BalanceUnsupportedError       the channel type has no balance API
    ├── BalanceReadError              a balance answer could not be read
    ├── UnsupportedChannelTypeError   no adaptor for this channel type (or an unknown id)
    └── InvalidRequestError           the request cannot be expressed for this upstream
        └── UnsupportedModeError      the channel type does not serve this mode

Transport failures (connection refused, a stream cut short) are aiohttp's own
`aiohttp.ClientError`s and `TimeoutError`, raised by `open` and by reading the response.
"""

from __future__ import annotations

from libs.providers.base import (
    Adaptor,
    BalanceUnsupportedError,
    ChannelInfo,
    FormFile,
    Mode,
    ProviderError,
    RelayRequest,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    Usage,
)
from libs.providers.channel_types import ChannelType, default_base_url, display_name
from libs.providers.errors import (
    BalanceReadError,
    InvalidRequestError,
    UnsupportedChannelTypeError,
    UnsupportedModeError,
)
from libs.providers.registry import Adaptors

__all__ = [
    "Adaptor",
    "Adaptors",
    "BalanceReadError",
    "BalanceUnsupportedError",
    "ChannelInfo",
    "ChannelType",
    "FormFile",
    "InvalidRequestError",
    "Mode",
    "ProviderError",
    "RelayRequest",
    "StreamDecoder",
    "UnsupportedChannelTypeError",
    "UnsupportedModeError",
    "UpstreamError",
    "UpstreamRequest",
    "UpstreamResponse",
    "Usage",
    "default_base_url",
    "display_name",
]
