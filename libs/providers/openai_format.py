"""Builders for OpenAI's response shapes, shared by the adaptors that convert to them."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson

from libs.providers.base import Usage


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


def usage_object(usage: Usage) -> dict[str, Any]:
    """OpenAI's `usage`, with the detail blocks present only when they carry something."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }
    if usage.cached_tokens:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.reasoning_tokens:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def usage_from_object(body: Any) -> Usage | None:
    """Reads OpenAI's `usage` object; None when absent or not an object."""
    if not isinstance(body, dict):
        return None
    prompt_details = body.get("prompt_tokens_details") or {}
    completion_details = body.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(body.get("prompt_tokens") or 0),
        completion_tokens=int(body.get("completion_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0)
        if isinstance(prompt_details, dict)
        else 0,
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0)
        if isinstance(completion_details, dict)
        else 0,
    )


def chat_completion(
    *,
    completion_id: str,
    model: str,
    message: dict[str, Any],
    finish_reason: str | None,
    usage: Usage,
    created: int | None = None,
) -> bytes:
    """A whole `chat.completion` object with one choice."""
    return orjson.dumps(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created or int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
            "usage": usage_object(usage),
        }
    )


def chat_chunk(
    *,
    completion_id: str,
    model: str,
    created: int,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage: Usage | None = None,
) -> bytes:
    """One `chat.completion.chunk`; with only `usage`, the final usage chunk (no choices)."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
    }
    if delta is not None or finish_reason is not None:
        body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}]
    if usage is not None:
        body["usage"] = usage_object(usage)
    return orjson.dumps(body)


def error_object(
    message: str,
    *,
    type: str = "upstream_error",
    code: str | int | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
