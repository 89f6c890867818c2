"""Reading what a client sent: the body (size-limited, gzip), the key, the client's address."""

from __future__ import annotations

import secrets
import time
import zlib
from dataclasses import dataclass

from starlette.requests import Request

from services.relay.errors import RelayError, unauthorized


def new_request_id() -> str:
    """Sortable by time, unique enough to be a JetStream message id: `20261128030405a1b2c3d4`."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(6)


def _too_large(limit: int) -> RelayError:
    return RelayError(
        413,
        f"request body is larger than {limit} bytes",
        type="invalid_request_error",
        code="request_too_large",
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped when sent gzip-compressed; 413 beyond `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            body = decompressor.decompress(body, limit + 1)
        except zlib.error:
            raise RelayError(
                400, "the gzip body cannot be decompressed", type="invalid_request_error"
            ) from None
        if len(body) > limit or decompressor.unconsumed_tail:
            raise _too_large(limit)
    return body


@dataclass(frozen=True, slots=True)
class ApiKey:
    key: str
    channel_id: int | None  # `sk-KEY-CHANNELID` pins the request to a channel


def parse_api_key(request: Request) -> ApiKey:
    """One API's key forms: `Bearer sk-KEY`, `sk-` optional, `-CHANNELID` to pin a channel.

    `x-api-key` (Anthropic SDKs) and `api-key` (Azure SDKs) are accepted too.
    """
    header = request.headers.get("authorization", "")
    raw = header[7:] if header[:7].lower() == "bearer " else header
    raw = raw.strip() or request.headers.get("x-api-key", "") or request.headers.get("api-key", "")
    raw = raw.strip().removeprefix("sk-")
    if not raw:
        raise unauthorized("未提供令牌 (no API key provided)")
    key, _, pinned = raw.partition("-")
    channel_id: int | None = None
    if pinned:
        if not pinned.isdigit():
            raise unauthorized("无效的令牌 (invalid API key)")
        channel_id = int(pinned)
    return ApiKey(key=key, channel_id=channel_id)
