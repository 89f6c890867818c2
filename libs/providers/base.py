"""The one interface every upstream API family implements.

An adaptor translates; it does not decide. The relay (traffic) and the health service (channel
tests, balances) pick channels, count tokens and charge; an adaptor only says what to send to
its upstream for an OpenAI-format request and how to read what comes back into OpenAI's format.

Most adaptors are pure: `build_request` describes the HTTP request, `read_response`,
`stream_decoder` and `read_error` turn bytes into OpenAI-format bytes, usage and errors. The
I/O happens in `open`, whose default sends the described request with the caller's aiohttp
session; a family whose exchange is not one plain HTTP request (an access token fetched
first, a WebSocket) overrides `open` and nothing else, so the relay never changes for it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp


class Mode(StrEnum):
    """What an OpenAI-format request asks for; decides the upstream endpoint."""

    CHAT = "chat"  # /v1/chat/completions
    COMPLETIONS = "completions"  # /v1/completions
    EDITS = "edits"  # /v1/edits
    EMBEDDINGS = "embeddings"  # /v1/embeddings, /v1/engines/{model}/embeddings
    MODERATIONS = "moderations"  # /v1/moderations
    IMAGES = "images"  # /v1/images/generations
    SPEECH = "speech"  # /v1/audio/speech (binary answer)
    TRANSCRIPTION = "transcription"  # /v1/audio/transcriptions (multipart)
    TRANSLATION = "translation"  # /v1/audio/translations (multipart)


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    """What an adaptor may know of a channel: an immutable snapshot, never a database row."""

    id: int
    type: int
    key: str
    base_url: str  # the channel's own, else the type's default; no trailing slash
    config: Mapping[str, Any] = field(default_factory=dict)  # channels.config, parsed JSON
    other: str = ""  # One API's free field (e.g. a Gemini or Azure API version)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True, slots=True)
class FormFile:
    """A file part of a multipart request (audio transcription and translation)."""

    name: str
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(slots=True)
class RelayRequest:
    """An OpenAI-format request, after the relay's checks, model mapping and system prompt.

    `body` is the parsed JSON (or the multipart text fields) with `model` already mapped.
    `raw` holds the client's original bytes while nothing in `body` has been changed, so a
    pass-through adaptor can forward them untouched.
    """

    mode: Mode
    model: str
    body: dict[str, Any]
    stream: bool = False
    raw: bytes | None = None
    files: tuple[FormFile, ...] = ()
    include_usage: bool = True  # ask the upstream for usage in streams


@dataclass(slots=True)
class UpstreamRequest:
    """An HTTP request to an upstream, fully described (no I/O done)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    files: tuple[FormFile, ...] = ()  # when set, `form_fields` + files go as multipart
    #: multipart text fields; a list value is sent as one part per item (e.g.
    #: `timestamp_granularities[]`)
    form_fields: dict[str, str | list[str]] = field(default_factory=dict)


class ProviderError(Exception):
    """Base of every error `libs.providers` raises."""


class UpstreamError(ProviderError):
    """An upstream's error, in OpenAI's terms: `{"error": {message, type, param, code}}`."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "upstream_error",
        code: str | int | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.code = code
        self.param = param


class BalanceUnsupportedError(ProviderError):
    """This channel type has no balance the gateway can query."""


class UpstreamResponse(ABC):
    """What `open` returns: the status, then either the whole body or its lines."""

    status: int
    headers: Mapping[str, str]

    @abstractmethod
    async def read(self) -> bytes: ...

    @abstractmethod
    def line_batches(self) -> AsyncIterator[list[bytes]]:
        """The body's lines (SSE or NDJSON, without line endings), as many as each read brings.

        Batches let the relay write what one network read brought in one write, rather than
        one write per line.
        """

    async def lines(self) -> AsyncIterator[bytes]:
        """The body line by line."""
        async for batch in self.line_batches():
            for line in batch:
                yield line

    @abstractmethod
    def release(self) -> None:
        """Give the connection back (or close it, when the body was not read to the end)."""


class HttpUpstreamResponse(UpstreamResponse):
    """An aiohttp response, read without buffering the whole stream."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.headers

    async def read(self) -> bytes:
        return await self._response.read()

    async def line_batches(self) -> AsyncIterator[list[bytes]]:
        partial = b""
        async for data in self._response.content.iter_any():
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            if lines:
                yield [line[:-1] if line.endswith(b"\r") else line for line in lines]
        if partial:
            yield [partial.rstrip(b"\r")]

    def release(self) -> None:
        self._response.release()


class StreamDecoder(ABC):
    """Turns an upstream stream, line by line, into OpenAI chat-completion chunks.

    `feed` returns the JSON payloads of the `data:` lines to send to the client (without the
    `data: ` prefix or the `[DONE]` sentinel, which the relay writes). After the stream,
    `usage` holds the upstream's usage if it sent one, `text` what was generated (for counting
    tokens when it did not), and `error` an error the upstream sent inside the stream.
    """

    usage: Usage | None = None
    error: UpstreamError | None = None

    @abstractmethod
    def feed(self, line: bytes) -> Iterable[bytes]: ...

    def close(self) -> Iterable[bytes]:
        """Chunks still owed once the upstream ended (e.g. a final chunk with usage)."""
        return ()

    @property
    @abstractmethod
    def text(self) -> str: ...


class Adaptor(ABC):
    """One upstream API family (OpenAI and compatibles, Azure, Anthropic, Gemini, ...)."""

    #: Modes this family serves; the relay answers others with an OpenAI-style 400.
    modes: frozenset[Mode] = frozenset({Mode.CHAT})

    @abstractmethod
    def build_request(self, channel: ChannelInfo, request: RelayRequest) -> UpstreamRequest:
        """URL, headers (auth, signing) and body for `request` on `channel`."""

    @abstractmethod
    def read_response(self, request: RelayRequest, body: bytes) -> tuple[bytes, Usage | None]:
        """A successful non-stream answer as OpenAI-format bytes, with the usage it reports.

        Binary answers (speech) come back unchanged with no usage. Raises UpstreamError when a
        success status carries an error body (some upstreams answer errors with 200).
        """

    @abstractmethod
    def stream_decoder(self, request: RelayRequest) -> StreamDecoder: ...

    @abstractmethod
    def read_error(self, status: int, body: bytes) -> UpstreamError:
        """An error answer as an UpstreamError; any body (HTML, empty) gives a clear message."""

    def default_models(self) -> tuple[str, ...]:
        """The models a new channel of this family offers unless the operator lists others."""
        return ()

    def balance_requests(self, channel: ChannelInfo) -> list[UpstreamRequest]:
        """The requests whose answers tell the channel's balance; raises when unsupported.

        Some families need two (OpenAI: the subscription's limit, then the month's usage).
        """
        raise BalanceUnsupportedError(f"channel type {channel.type} has no balance API")

    def read_balance(self, bodies: list[bytes]) -> float:
        """The balance in USD from the answers to `balance_requests`, in the same order."""
        raise BalanceUnsupportedError("no balance API")

    async def open(
        self,
        http: aiohttp.ClientSession,
        channel: ChannelInfo,
        request: RelayRequest,
        *,
        timeout: aiohttp.ClientTimeout | None = None,  # noqa: ASYNC109 - a policy, not a deadline
    ) -> UpstreamResponse:
        """Send the request; the default is the one HTTP request `build_request` describes."""
        upstream = self.build_request(channel, request)
        data: aiohttp.FormData | bytes | None = upstream.body
        if upstream.files:
            form = aiohttp.FormData()
            for name, value in upstream.form_fields.items():
                for item in [value] if isinstance(value, str) else value:
                    form.add_field(name, item)
            for part in upstream.files:
                form.add_field(
                    part.name, part.content, filename=part.filename, content_type=part.content_type
                )
            data = form
        response = await http.request(
            upstream.method,
            upstream.url,
            headers=upstream.headers,
            data=data,
            timeout=timeout or aiohttp.ClientTimeout(total=None),
        )
        return HttpUpstreamResponse(response)
