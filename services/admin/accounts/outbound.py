"""Calls to services outside the gateway (OAuth providers, Cloudflare Turnstile), with timeouts.

Failures become refusals naming the service, never carrying what was sent (client secrets) nor
what came back; the log says what happened, without bodies.

The fixed addresses (GitHub, Lark, Turnstile) are an `OutboundConfig` served by the
`get_outbound_config` dependency; tests point them at a fake provider through FastAPI's
`app.dependency_overrides`. Addresses an administrator configures (OIDC endpoints, the WeChat
server) come from the options.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any, Final

import aiohttp
import orjson
from fastapi import Depends

from services.admin.errors import AdminError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS: Final = 5.0
"""One API gives every OAuth call five seconds."""
MAX_RESPONSE_BYTES: Final = 1 << 20


@dataclass(frozen=True)
class OutboundConfig:
    """Where the fixed services are (the `*_token_url`s are addresses, not secrets)."""

    github_token_url: str = "https://github.com/login/oauth/access_token"  # noqa: S105
    github_user_url: str = "https://api.github.com/user"
    lark_token_url: str = "https://passport.feishu.cn/suite/passport/oauth/token"  # noqa: S105
    lark_user_url: str = "https://passport.feishu.cn/suite/passport/oauth/userinfo"
    turnstile_verify_url: str = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


def get_outbound_config() -> OutboundConfig:
    return OutboundConfig()


OutboundDep = Annotated[OutboundConfig, Depends(get_outbound_config)]


class OutboundError(AdminError):
    """A service outside the gateway could not be reached or answered nonsense."""


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    body: Any
    """The decoded JSON body; None when the body was empty or not JSON."""


async def call_json(
    config: OutboundConfig,
    service: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    json: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> OutboundResponse:
    """Send one request and decode its JSON answer, whatever the status.

    Raises OutboundError ("cannot reach `service`") when the request fails or times out.
    """
    timeout = aiohttp.ClientTimeout(total=config.timeout_seconds)
    request_headers = {"Accept": "application/json", **(headers or {})}
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as http,
            http.request(
                method, url, headers=request_headers, json=json, data=form, allow_redirects=False
            ) as response,
        ):
            raw = await _read_limited(response)
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        # ValueError: an address an administrator mistyped ("not a URL"). A response error
        # would print the request's headers (bearer tokens): only its class is logged.
        reason = type(exc).__name__
        if not isinstance(exc, aiohttp.ClientResponseError):
            reason += f": {exc}"
        logger.warning("%s: %s %s failed: %s", service, method, _without_query(url), reason)
        raise OutboundError(f"无法连接至{spaced(service)}服务器，请稍后重试！") from None
    try:
        body = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        body = None
    if body is None:
        logger.warning(
            "%s: %s %s answered %d without JSON", service, method, _without_query(url), status
        )
    return OutboundResponse(status, body)


async def _read_limited(response: aiohttp.ClientResponse) -> bytes:
    """The body, or nothing when it is larger than any answer these services give."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            return b""
    return bytes(body)


def spaced(name: str) -> str:
    """`name` as it sits in a Chinese sentence: Latin names get spaces around them."""
    return f" {name} " if name.isascii() else name


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
