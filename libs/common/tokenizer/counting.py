"""Token counting as One API does it (songquanpeng/one-api `relay/adaptor/openai/token.go`).

Chat prompts: every message costs 3 tokens plus its content and role, and a present `name`
costs 1 more plus the name (`gpt-3.5-turbo-0301`: 4 per message, and a name replaces the role:
-1); the reply is primed with 3 more. Content may be a string or a list of parts: `text` parts
count their text, `image_url` parts as in `images`; other parts, tool definitions and tool calls
count nothing, as in One API. Text is encoded with tiktoken, special tokens taken as plain text.

With the option `ApproximateTokenEnabled` (`approximate=True`) a text counts
int(UTF-8 bytes * 0.38) tokens instead, computed exactly.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

import tiktoken

from libs.common.tokenizer.encodings import CL100K_BASE, O200K_BASE, EncodingLoader
from libs.common.tokenizer.images import ImageSizeResolver, image_tokens

if TYPE_CHECKING:
    from libs.common.settings import Settings

REPLY_PRIMING_TOKENS: Final = 3

# Families tokenized with o200k_base; everything else uses cl100k_base.
_O200K_PREFIXES: Final = ("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "gpt-oss")
_O200K_REASONING: Final = ("o1", "o3", "o4")  # o1, o1-mini, o3-mini-2025-01-31, o4-mini, ...
_MODEL_CACHE_LIMIT: Final = 10_000  # model names come from clients: bound what is remembered


def encoding_name_for_model(model: str) -> str:
    """`o200k_base` for the gpt-4o, o1/o3/o4, gpt-4.1, gpt-4.5 and gpt-5 families, else cl100k.

    A provider prefix (`openai/gpt-4o`) and a fine-tune prefix (`ft:gpt-4o-mini:...`) are
    ignored. One API uses cl100k for everything but gpt-4o (and p50k/r50k for the retired
    completion models, which are not shipped here).
    """
    name = model.rpartition("/")[2].removeprefix("ft:")
    if name.startswith(_O200K_PREFIXES):
        return O200K_BASE
    for family in _O200K_REASONING:
        if name == family or name.startswith(family + "-"):
            return O200K_BASE
    return CL100K_BASE


def count_approx(text: str) -> int:
    """One API's approximate count: int(len(text in UTF-8 bytes) * 0.38), exactly."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return size * 38 // 100


class Tokenizer:
    """Counts tokens per model with offline encodings; share one per process.

    Encodings load on first use (call `preload()` at start-up to keep that off a request);
    the model -> encoding choice is remembered, so a count costs a dict lookup plus encoding.
    """

    def __init__(self, loader: EncodingLoader | None = None) -> None:
        self.loader = loader or EncodingLoader()
        self._by_model: dict[str, tiktoken.Encoding] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokenizer:
        """Use the cache folder of `TIKTOKEN_CACHE_DIR`, else of `DATA_GYM_CACHE_DIR`."""
        cache_dir = settings.tiktoken_cache_dir or settings.data_gym_cache_dir or None
        return cls(EncodingLoader(cache_dir))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Tokenizer:
        """Like `from_settings`, reading the two variables from `environ` (default: os)."""
        env = os.environ if environ is None else environ
        cache_dir = env.get("TIKTOKEN_CACHE_DIR") or env.get("DATA_GYM_CACHE_DIR") or None
        return cls(EncodingLoader(cache_dir))

    def preload(self) -> None:
        """Load every encoding now."""
        self.loader.get(CL100K_BASE)
        self.loader.get(O200K_BASE)

    def encoding_for(self, model: str) -> tiktoken.Encoding:
        encoding = self._by_model.get(model)
        if encoding is None:
            encoding = self.loader.get(encoding_name_for_model(model))
            if len(self._by_model) < _MODEL_CACHE_LIMIT:
                self._by_model[model] = encoding
        return encoding

    def counter(self, model: str, *, approximate: bool = False) -> TokenCounter:
        """A counter for one request: it remembers the strings it has counted."""
        return TokenCounter(None if approximate else self.encoding_for(model), model)

    def count_text(self, text: str, model: str, *, approximate: bool = False) -> int:
        if approximate:
            return count_approx(text)
        return len(self.encoding_for(model).encode_ordinary(text))

    def count_input(self, value: object, model: str, *, approximate: bool = False) -> int:
        return self.counter(model, approximate=approximate).input(value)

    def count_messages(
        self,
        messages: Sequence[Mapping[str, Any]],
        model: str,
        *,
        approximate: bool = False,
        image_size: ImageSizeResolver | None = None,
    ) -> int:
        counter = self.counter(model, approximate=approximate)
        return counter.messages(messages, image_size=image_size)


class TokenCounter:
    """Counts for one model within one request; never encodes the same string twice."""

    __slots__ = ("_encoding", "_memo", "model")

    def __init__(self, encoding: tiktoken.Encoding | None, model: str) -> None:
        self._encoding = encoding  # None: approximate counting
        self._memo: dict[str, int] = {}
        self.model = model

    def text(self, text: str) -> int:
        """Tokens of `text`."""
        count = self._memo.get(text)
        if count is None:
            if self._encoding is None:
                count = count_approx(text)
            else:
                count = len(self._encoding.encode_ordinary(text))
            self._memo[text] = count
        return count

    def input(self, value: object) -> int:
        """Tokens of a completions `prompt` or moderations `input`: a string or strings.

        A list of strings counts as their concatenation; anything else counts 0, as in One API.
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return self.text("".join(value))
        return 0

    def stream(self) -> StreamTokenCounter:
        """A collector for the streamed completion, counted with this counter."""
        return StreamTokenCounter(self)

    def messages(
        self,
        messages: Iterable[Mapping[str, Any]],
        *,
        image_size: ImageSizeResolver | None = None,
    ) -> int:
        """Prompt tokens of a chat `messages` array (see the module documentation)."""
        if self.model == "gpt-3.5-turbo-0301":
            per_message, per_name = 4, -1
        else:
            per_message, per_name = 3, 1
        total = REPLY_PRIMING_TOKENS
        for message in messages:
            total += per_message + self._content(message.get("content"), image_size)
            role = message.get("role")
            if isinstance(role, str):
                total += self.text(role)
            name = message.get("name")
            if isinstance(name, str):
                total += per_name + self.text(name)
        return total

    def _content(self, content: object, image_size: ImageSizeResolver | None) -> int:
        if isinstance(content, str):
            return self.text(content)
        if not isinstance(content, list):
            return 0
        total = 0
        for part in content:
            if not isinstance(part, Mapping):
                continue
            kind = part.get("type")
            if kind == "text":
                text = part.get("text")
                if isinstance(text, str):
                    total += self.text(text)
            elif kind == "image_url":
                image = part.get("image_url")
                if isinstance(image, Mapping) and isinstance(image.get("url"), str):
                    detail = image.get("detail")
                    total += image_tokens(
                        image["url"], detail if isinstance(detail, str) else None, image_size
                    )
                elif isinstance(image, str):
                    total += image_tokens(image, None, image_size)
        return total


class StreamTokenCounter:
    """Collects a streamed completion's text and counts it once, at the end.

    `add` only appends the chunk; `count()` joins and encodes (once, until more is added).
    This is the completion count when the upstream reports no usage.
    """

    __slots__ = ("_chunks", "_count", "_counter")

    def __init__(self, counter: TokenCounter) -> None:
        self._counter = counter
        self._chunks: list[str] = []
        self._count: int | None = 0

    def add(self, chunk: str) -> None:
        if chunk:
            self._chunks.append(chunk)
            self._count = None

    @property
    def text(self) -> str:
        """Everything added so far."""
        if len(self._chunks) > 1:
            self._chunks = ["".join(self._chunks)]
        return self._chunks[0] if self._chunks else ""

    def count(self) -> int:
        if self._count is None:
            self._count = self._counter.text(self.text)
        return self._count
