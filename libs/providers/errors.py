"""The errors `libs.providers` raises, and the mapping of upstream error bodies to UpstreamError.

Every error derives from `ProviderError` (see the tree in `libs.providers`). Upstream error
bodies come in many shapes: OpenAI's envelope, and in the wild `{"message": ..}`,
`{"msg": ..}`, `{"err": ..}`, `{"error_msg": ..}`, `{"error": "text"}`, `{"detail": ..}`,
MiniMax's `base_resp`, HTML pages from proxies and empty bodies. `error_from_body` turns any
of them into an `UpstreamError` with a message a user can act on.
"""

from __future__ import annotations

from typing import Any

import orjson

from libs.providers.base import BalanceUnsupportedError, ProviderError, UpstreamError

__all__ = [
    "BalanceReadError",
    "BalanceUnsupportedError",
    "InvalidRequestError",
    "ProviderError",
    "UnsupportedChannelTypeError",
    "UnsupportedModeError",
    "UpstreamError",
    "embedded_error",
    "error_from_body",
    "error_from_payload",
]

#: Fields that carry an error message in non-OpenAI error bodies, in the order they are tried.
_MESSAGE_KEYS = ("message", "msg", "err", "error_msg", "error_message", "errmsg", "detail")
#: Fields that carry an error code beside those messages.
_CODE_KEYS = ("code", "error_code", "errcode", "status_code")
_MAX_TEXT = 300


class UnsupportedChannelTypeError(ProviderError):
    """No adaptor serves this channel type (not implemented yet, or an unknown id)."""

    def __init__(self, channel_type: int, message: str | None = None) -> None:
        super().__init__(message or f"channel type {channel_type} is not supported")
        self.channel_type = channel_type


class InvalidRequestError(ProviderError):
    """The request cannot be expressed for this upstream (the relay answers 400)."""


class UnsupportedModeError(InvalidRequestError):
    """This channel type does not serve the requested mode (e.g. embeddings on MiniMax)."""


class BalanceReadError(ProviderError):
    """A balance answer could not be read (unexpected shape, or an error inside it)."""


def _text(value: Any) -> str:
    """A message from a JSON value: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):  # FastAPI/pydantic `detail`: [{"loc", "msg", "type"}]
        parts = [
            _text(item.get("msg") or item.get("message")) if isinstance(item, dict) else _text(item)
            for item in value
        ]
        return "; ".join(part for part in parts if part)
    if isinstance(value, dict):
        for key in ("message", "msg"):
            if isinstance(value.get(key), str) and value[key]:
                return str(value[key])
    return orjson.dumps(value).decode()


def _code(value: Any) -> str | int | None:
    if isinstance(value, bool) or value is None or value == "":
        return None
    if isinstance(value, str | int):
        return value
    return str(value)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def error_from_payload(status: int, payload: Any) -> UpstreamError | None:
    """The error a parsed JSON body describes, or None when it describes none."""
    if isinstance(payload, list) and payload:  # some upstreams wrap the body in a list
        payload = payload[0]
    if not isinstance(payload, dict):
        return None
    error = payload.get("error")
    if isinstance(error, dict) and error:
        message = _text(error.get("message")) or _text(error.get("msg"))
        if not message:
            message = f"bad response status code {status}"
        return UpstreamError(
            status,
            message,
            type=_str_or_none(error.get("type")) or "upstream_error",
            code=_code(error.get("code")),
            param=_str_or_none(error.get("param")),
        )
    if isinstance(error, str) and error:
        return UpstreamError(
            status,
            error,
            type=_str_or_none(payload.get("type")) or "upstream_error",
            code=_code(payload.get("code")),
        )
    base_resp = payload.get("base_resp")  # MiniMax: errors ride in base_resp, even on 200
    if isinstance(base_resp, dict) and base_resp.get("status_code") not in (None, 0):
        return UpstreamError(
            status,
            _text(base_resp.get("status_msg")) or f"bad response status code {status}",
            code=_code(base_resp.get("status_code")),
        )
    for key in _MESSAGE_KEYS:
        message = _text(payload.get(key))
        if message:
            code = next(
                (c for c in (_code(payload.get(k)) for k in _CODE_KEYS) if c is not None), None
            )
            return UpstreamError(
                status,
                message,
                type=_str_or_none(payload.get("type")) or "upstream_error",
                code=code,
            )
    return None


def error_from_body(status: int, body: bytes) -> UpstreamError:
    """An error answer of any shape as an UpstreamError; never fails."""
    fallback = f"bad response status code {status}"
    stripped = body.strip()
    if stripped:
        try:
            payload = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            payload = None
            text = stripped.decode("utf-8", "replace")
            lowered = text[:512].lower()
            if not (text.startswith("<") or "<html" in lowered or "<!doctype" in lowered):
                # a short plain-text answer (Go's "404 page not found", proxy errors) says more
                # than the status alone
                one_line = " ".join(text.split())
                if len(one_line) > _MAX_TEXT:
                    one_line = one_line[:_MAX_TEXT] + "..."
                fallback = f"{fallback}: {one_line}"
        else:
            if isinstance(payload, str) and payload.strip():  # a bare JSON string
                return UpstreamError(status, payload.strip())
            error = error_from_payload(status, payload)
            if error is not None:
                return error
    return UpstreamError(status, fallback, code="bad_response_status_code")


def embedded_error(payload: Any) -> UpstreamError | None:
    """An error carried by a success answer or a stream frame, with the status it names.

    The status is the body's own (`status`, as Azure adds) or else 500, so that the relay
    treats it as the upstream's failure (retried, refunded) rather than a client mistake.
    """
    if not isinstance(payload, dict):
        return None
    base_resp = payload.get("base_resp")
    failed_base_resp = isinstance(base_resp, dict) and base_resp.get("status_code") not in (None, 0)
    if not payload.get("error") and not failed_base_resp:
        return None
    status = 500
    error = payload.get("error")
    for source in (error, payload):
        candidate = source.get("status") if isinstance(source, dict) else None
        if isinstance(candidate, int) and not isinstance(candidate, bool) and candidate >= 400:
            status = candidate
            break
    return error_from_payload(status, payload)
