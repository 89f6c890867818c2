"""Ollama (`/api/chat`, `/api/embed`), converted to and from OpenAI's format.

Chat: messages keep their role and text; images become base64 `images` (data URLs are
decoded in place, other URLs are downloaded by `open` first); sampling parameters go into
`options` (`max_tokens` becomes `num_predict`); `stream` is always explicit because Ollama
streams by default. The NDJSON stream becomes `chat.completion.chunk`s, the last one carrying
the finish reason and the usage from `prompt_eval_count`/`eval_count`. Embeddings: OpenAI's
list with `usage.prompt_tokens` from `prompt_eval_count`. Errors are `{"error": "..."}`.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from collections.abc import Iterable
from typing import Any, Final

import aiohttp
import orjson

from libs.providers.base import (
    Adaptor,
    ChannelInfo,
    Mode,
    RelayRequest,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    Usage,
)
from libs.providers.errors import (
    InvalidRequestError,
    UnsupportedModeError,
    embedded_error,
    error_from_body,
)
from libs.providers.openai_format import chat_chunk, chat_completion, new_completion_id

__all__ = ["OllamaAdaptor", "OllamaStreamDecoder"]

#: OpenAI sampling parameters and the Ollama option each becomes.
_OPTIONS: Final = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "seed": "seed",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "num_ctx": "num_ctx",
}
_IMAGE_DOWNLOAD_LIMIT: Final = 20 * 1024 * 1024
_IMAGE_DOWNLOAD_TIMEOUT: Final = aiohttp.ClientTimeout(total=30)
_DEFAULT_MODELS: Final = ("llama3.2", "llama3.1:8b", "qwen2.5:7b", "mistral", "nomic-embed-text")


# --- requests ---------------------------------------------------------------------------------


def _image_urls(content: Any) -> list[str]:
    if not isinstance(content, list):
        return []
    urls = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                urls.append(url)
    return urls


def _remote(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _data_url_payload(url: str) -> str:
    """The base64 payload of a `data:` URL (or a bare base64 string)."""
    if url.startswith("data:"):
        header, _, payload = url.partition(",")
        if not header.endswith(";base64"):
            raise InvalidRequestError("an image data URL must be base64-encoded")
        return payload
    return url


def _text_and_images(content: Any) -> tuple[str, list[str]]:
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        return "", []
    texts: list[str] = []
    images: list[str] = []
    for part in content:
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
    for url in _image_urls(content):
        if _remote(url):
            raise InvalidRequestError("image URLs must be downloaded first: send through open()")
        images.append(_data_url_payload(url))
    return "\n".join(texts), images


def _tool_calls_to_ollama(calls: Any) -> list[dict[str, Any]]:
    out = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            try:
                arguments = orjson.loads(arguments) if arguments.strip() else {}
            except orjson.JSONDecodeError:
                raise InvalidRequestError("tool call arguments are not valid JSON") from None
        out.append({"function": {"name": function.get("name", ""), "arguments": arguments}})
    return out


def _messages(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise InvalidRequestError("messages must be a list")
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        text, images = _text_and_images(message.get("content"))
        item: dict[str, Any] = {
            "role": "system" if role == "developer" else role,
            "content": text,
        }
        if images:
            item["images"] = images
        if message.get("tool_calls"):
            item["tool_calls"] = _tool_calls_to_ollama(message["tool_calls"])
        if role == "tool" and isinstance(message.get("name"), str):
            item["tool_name"] = message["name"]
        out.append(item)
    return out


def _options(body: dict[str, Any]) -> dict[str, Any]:
    options = {
        target: body[source] for source, target in _OPTIONS.items() if body.get(source) is not None
    }
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        options["num_predict"] = max_tokens
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else stop
    return options


def _format(response_format: Any) -> Any:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return "json"
    if response_format.get("type") == "json_schema":
        schema = response_format.get("json_schema")
        return schema.get("schema") if isinstance(schema, dict) else None
    return None


def chat_body(request: RelayRequest) -> dict[str, Any]:
    """Ollama's `/api/chat` body for an OpenAI chat request."""
    body = request.body
    out: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(body.get("messages")),
        "stream": request.stream,
    }
    options = _options(body)
    if options:
        out["options"] = options
    if body.get("tools"):
        out["tools"] = body["tools"]
    fmt = _format(body.get("response_format"))
    if fmt is not None:
        out["format"] = fmt
    return out


def embed_body(request: RelayRequest) -> dict[str, Any]:
    """Ollama's `/api/embed` body for an OpenAI embeddings request."""
    out: dict[str, Any] = {"model": request.model, "input": request.body.get("input", "")}
    if request.body.get("dimensions") is not None:
        out["dimensions"] = request.body["dimensions"]
    return out


# --- answers ----------------------------------------------------------------------------------


def _usage(payload: dict[str, Any]) -> Usage | None:
    """The usage of a final answer; None when Ollama left the prompt count out (cached
    prompt), so that the relay counts both sides rather than bill a prompt of 0."""
    prompt = payload.get("prompt_eval_count")
    if not isinstance(prompt, int):
        return None
    completion = payload.get("eval_count")
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion if isinstance(completion, int) else 0
    )


def _tool_calls_to_openai(calls: Any, first_index: int = 0) -> list[dict[str, Any]]:
    out = []
    for offset, call in enumerate(calls if isinstance(calls, list) else ()):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        out.append(
            {
                "index": first_index + offset,
                "id": "call_" + uuid.uuid4().hex[:24],
                "type": "function",
                "function": {
                    "name": function.get("name", ""),
                    "arguments": arguments
                    if isinstance(arguments, str)
                    else orjson.dumps(arguments or {}).decode(),
                },
            }
        )
    return out


def _finish_reason(payload: dict[str, Any], tool_calls: bool) -> str:
    if tool_calls:
        return "tool_calls"
    return "length" if payload.get("done_reason") == "length" else "stop"


def _object(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise UpstreamError(
            500, "upstream answered with a body that is not JSON", code="bad_response_body"
        ) from None
    if not isinstance(payload, dict):
        raise UpstreamError(500, "upstream answered with a body that is not a JSON object")
    error = embedded_error(payload)
    if error is not None:
        raise error
    return payload


def _embedding(values: list[float], encoding: Any) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


class OllamaStreamDecoder(StreamDecoder):
    """Ollama's NDJSON chat stream as OpenAI chunks; the `done` line closes it with usage."""

    def __init__(self, model: str) -> None:
        self.usage = None
        self.error = None
        self._model = model
        self._id = new_completion_id()
        self._created = int(time.time())
        self._role_sent = False
        self._tool_calls = 0
        self._parts: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def feed(self, line: bytes) -> Iterable[bytes]:
        line = line.strip()
        if not line:
            return ()
        try:
            payload = orjson.loads(line)
        except orjson.JSONDecodeError:
            return ()
        if not isinstance(payload, dict):
            return ()
        error = embedded_error(payload)
        if error is not None:
            self.error = error
            return ()
        if isinstance(payload.get("model"), str) and payload["model"]:
            self._model = payload["model"]
        delta = self._delta(payload.get("message"))
        if payload.get("done"):
            self.usage = _usage(payload)
            finish = _finish_reason(payload, self._tool_calls > 0)
            return (self._chunk(delta, finish, self.usage),)
        if not delta:
            return ()
        return (self._chunk(delta, None, None),)

    def _delta(self, message: Any) -> dict[str, Any]:
        message = message if isinstance(message, dict) else {}
        delta: dict[str, Any] = {}
        content = message.get("content")
        thinking = message.get("thinking")
        calls = _tool_calls_to_openai(message.get("tool_calls"), self._tool_calls)
        if isinstance(thinking, str) and thinking:
            delta["reasoning_content"] = thinking
            self._parts.append(thinking)
        if isinstance(content, str) and content:
            delta["content"] = content
            self._parts.append(content)
        if calls:
            delta["tool_calls"] = calls
            self._tool_calls += len(calls)
            self._parts.extend(call["function"]["arguments"] for call in calls)
        if delta and not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return delta

    def _chunk(self, delta: dict[str, Any], finish: str | None, usage: Usage | None) -> bytes:
        if finish is not None and not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return chat_chunk(
            completion_id=self._id,
            model=self._model,
            created=self._created,
            delta=delta,
            finish_reason=finish,
            usage=usage,
        )


class OllamaAdaptor(Adaptor):
    """Ollama channels (type 30): chat and embeddings."""

    modes = frozenset({Mode.CHAT, Mode.EMBEDDINGS})

    def build_request(self, channel: ChannelInfo, request: RelayRequest) -> UpstreamRequest:
        base = channel.base_url.rstrip("/")
        if not base:
            raise InvalidRequestError("an Ollama channel needs its server as base URL")
        if request.mode is Mode.CHAT:
            url, body = f"{base}/api/chat", chat_body(request)
        elif request.mode is Mode.EMBEDDINGS:
            url, body = f"{base}/api/embed", embed_body(request)
        else:
            raise UnsupportedModeError(f"Ollama does not serve {request.mode.value}")
        headers = {"Content-Type": "application/json"}
        if channel.key:
            headers["Authorization"] = f"Bearer {channel.key}"
        return UpstreamRequest("POST", url, headers=headers, body=orjson.dumps(body))

    async def open(
        self,
        http: aiohttp.ClientSession,
        channel: ChannelInfo,
        request: RelayRequest,
        *,
        timeout: aiohttp.ClientTimeout | None = None,  # noqa: ASYNC109 - a policy, not a deadline
    ) -> UpstreamResponse:
        """Downloads the images the messages link to (Ollama takes only base64), then sends."""
        if request.mode is Mode.CHAT:
            request = await self._inline_images(http, request)
        return await super().open(http, channel, request, timeout=timeout)

    async def _inline_images(
        self, http: aiohttp.ClientSession, request: RelayRequest
    ) -> RelayRequest:
        messages = request.body.get("messages")
        if not isinstance(messages, list):
            return request
        urls = {
            url
            for message in messages
            if isinstance(message, dict)
            for url in _image_urls(message.get("content"))
            if _remote(url)
        }
        if not urls:
            return request
        inlined = {url: await _download(http, url) for url in sorted(urls)}
        new_messages = [_with_inlined(message, inlined) for message in messages]
        return RelayRequest(
            mode=request.mode,
            model=request.model,
            body={**request.body, "messages": new_messages},
            stream=request.stream,
            raw=None,
            files=request.files,
            include_usage=request.include_usage,
        )

    def read_response(self, request: RelayRequest, body: bytes) -> tuple[bytes, Usage | None]:
        payload = _object(body)
        model = payload.get("model") if isinstance(payload.get("model"), str) else request.model
        usage = _usage(payload)
        if request.mode is Mode.EMBEDDINGS:
            vectors = payload.get("embeddings")
            encoding = request.body.get("encoding_format")
            data = [
                {"object": "embedding", "index": index, "embedding": _embedding(vector, encoding)}
                for index, vector in enumerate(vectors if isinstance(vectors, list) else ())
            ]
            counted = usage or Usage()
            out = {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {
                    "prompt_tokens": counted.prompt_tokens,
                    "total_tokens": counted.prompt_tokens,
                },
            }
            return orjson.dumps(out), usage
        raw_message = payload.get("message")
        message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
        calls = _tool_calls_to_openai(message.get("tool_calls"))
        for call in calls:
            del call["index"]
        answer: dict[str, Any] = {
            "role": "assistant",
            "content": message.get("content") if isinstance(message.get("content"), str) else "",
        }
        if isinstance(message.get("thinking"), str) and message["thinking"]:
            answer["reasoning_content"] = message["thinking"]
        if calls:
            answer["tool_calls"] = calls
        reported = usage or Usage(
            completion_tokens=payload["eval_count"]
            if isinstance(payload.get("eval_count"), int)
            else 0
        )
        body_out = chat_completion(
            completion_id=new_completion_id(),
            model=str(model),
            message=answer,
            finish_reason=_finish_reason(payload, bool(calls)),
            usage=reported,
        )
        return body_out, usage

    def stream_decoder(self, request: RelayRequest) -> StreamDecoder:
        return OllamaStreamDecoder(request.model)

    def read_error(self, status: int, body: bytes) -> UpstreamError:
        return error_from_body(status, body)

    def default_models(self) -> tuple[str, ...]:
        return _DEFAULT_MODELS


async def _download(http: aiohttp.ClientSession, url: str) -> str:
    """The base64 of an image the request links to."""
    try:
        async with http.get(url, timeout=_IMAGE_DOWNLOAD_TIMEOUT) as response:
            if response.status != 200:
                raise InvalidRequestError(
                    f"an image of the request could not be downloaded (status {response.status})"
                )
            content = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                content += chunk
                if len(content) > _IMAGE_DOWNLOAD_LIMIT:
                    raise InvalidRequestError("an image of the request is larger than 20 MiB")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise InvalidRequestError(
            f"an image of the request could not be downloaded ({type(exc).__name__})"
        ) from None
    return base64.b64encode(content).decode()


def _with_inlined(message: Any, inlined: dict[str, str]) -> Any:
    if not isinstance(message, dict) or not isinstance(message.get("content"), list):
        return message
    parts = []
    for part in message["content"]:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url in inlined:
                part = {"type": "image_url", "image_url": {"url": inlined[url]}}
        parts.append(part)
    return {**message, "content": parts}
