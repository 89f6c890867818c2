"""Helpers shared by the adaptors that convert OpenAI requests to other wire formats."""

from __future__ import annotations

import base64
import re
import urllib.parse
from typing import Any

import orjson

_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_MAX_SNIPPET = 200


def parse_data_url(url: str) -> tuple[str, str] | None:
    """`data:<mime>[;base64],<data>` as (mime type, base64 data); None for any other URL."""
    if not url.startswith("data:"):
        return None
    header, sep, data = url[5:].partition(",")
    if not sep:
        return None
    params = header.split(";")
    mime = params[0].strip().lower() or "text/plain"
    if "base64" in (p.strip().lower() for p in params[1:]):
        return mime, "".join(data.split())
    return mime, base64.b64encode(urllib.parse.unquote_to_bytes(data)).decode()


def one_line(message: str) -> str:
    return " ".join(message.split())


def content_text(content: Any) -> str:
    """The text of an OpenAI message `content`: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text") or "")
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and part.get("text")
        )
    return ""


def tool_arguments(raw: Any) -> dict[str, Any]:
    """A tool call's `arguments` (a JSON string, or already an object) as an object."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def sse_json(line: bytes) -> Any | None:
    """The JSON of a `data:` line; also of a bare JSON line (an error body sent with a 200)."""
    stripped = line.strip()
    if stripped.startswith(b"data:"):
        stripped = stripped[5:].strip()
    elif not stripped.startswith((b"{", b"[")):
        return None  # `event:` lines, blank lines, comments
    try:
        return orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return None


def describe_non_json(provider: str, status: int, body: bytes) -> str:
    """A one-line message for a body that is not JSON (a proxy's HTML page, plain text)."""
    head = body[:4096]
    lowered = head.lower()
    if head.startswith(b"<") or b"<html" in lowered or b"<!doctype" in lowered:
        match = _TITLE.search(head)
        title = one_line(match.group(1).decode("utf-8", "replace")) if match else ""
        suffix = f" ({title[:_MAX_SNIPPET]})" if title else ""
        return f"{provider} answered HTTP {status} with an HTML page, not an API error{suffix}"
    text = one_line(head.decode("utf-8", "replace"))
    if len(text) > _MAX_SNIPPET:
        text = text[:_MAX_SNIPPET] + "..."
    return f"{provider} answered HTTP {status}: {text}"
