"""What a request costs: the estimate reserved before the upstream call and the final charge.

One class per kind of request, each answering two questions with One API's formulas
(`libs.common.pricing`): how much to reserve for a channel, and what the answer cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import orjson

from libs.common.pricing import Pricing
from libs.common.pricing.quota import (
    image_quota,
    image_size_ratio,
    pre_consume_quota,
    stt_quota,
    text_quota,
    tts_quota,
)
from libs.common.tokenizer import TokenCounter
from libs.providers.base import Mode, Usage
from services.relay.errors import bad_request


@dataclass(frozen=True, slots=True)
class Ratios:
    model: float
    completion: float
    group: float

    def describe(self) -> str:
        return (
            f"model ratio {self.model:g}, completion ratio {self.completion:g}, "
            f"group ratio {self.group:g}"
        )


@dataclass(frozen=True, slots=True)
class Charge:
    quota: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    reasoning_tokens: int = 0


def ratios_for(pricing: Pricing, model: str, channel_type: int, group: str) -> Ratios:
    return Ratios(
        model=pricing.model_ratio(model, channel_type),
        completion=pricing.completion_ratio(model, channel_type),
        group=pricing.group_ratio(group),
    )


class Meter(ABC):
    """Prices one request; built after the body is validated, before a channel is chosen."""

    @abstractmethod
    def estimate(self, ratios: Ratios, pre_consumed_quota: int) -> int: ...

    @abstractmethod
    def charge(self, ratios: Ratios, usage: Usage | None, generated_text: str) -> Charge:
        """The final cost, from the upstream's usage or, without it, from local counts."""


class TextMeter(Meter):
    """Chat, completions, edits, embeddings and moderations: tokens in, tokens out."""

    def __init__(self, counter: TokenCounter, prompt_tokens: int, max_tokens: int) -> None:
        self._counter = counter
        self.prompt_tokens = prompt_tokens
        self._max_tokens = max_tokens

    def estimate(self, ratios: Ratios, pre_consumed_quota: int) -> int:
        return pre_consume_quota(
            self.prompt_tokens,
            self._max_tokens,
            model_ratio=ratios.model,
            group_ratio=ratios.group,
            pre_consumed_quota=pre_consumed_quota,
        )

    def charge(self, ratios: Ratios, usage: Usage | None, generated_text: str) -> Charge:
        if usage is None or (usage.prompt_tokens == 0 and usage.completion_tokens == 0):
            usage = Usage(
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self._counter.text(generated_text) if generated_text else 0,
            )
        quota = text_quota(
            usage.prompt_tokens,
            usage.completion_tokens,
            model_ratio=ratios.model,
            group_ratio=ratios.group,
            completion_ratio=ratios.completion,
        )
        return Charge(
            quota=quota,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            reasoning_tokens=usage.reasoning_tokens,
        )


class ImageMeter(Meter):
    """Image generation: ratio x size ratio x 1000 per image, known before the call."""

    def __init__(self, model: str, body: dict[str, Any]) -> None:
        self._n = body.get("n") or 1
        size = str(body.get("size") or "1024x1024")
        quality = body.get("quality")
        if not isinstance(self._n, int) or not 1 <= self._n <= 10:
            raise bad_request("n must be between 1 and 10", param="n")
        try:
            self._size_ratio = image_size_ratio(model, size, str(quality) if quality else None)
        except Exception:
            raise bad_request(f"size {size} is not supported for {model}", param="size") from None

    def estimate(self, ratios: Ratios, pre_consumed_quota: int) -> int:
        return image_quota(
            model_ratio=ratios.model,
            size_ratio=self._size_ratio,
            n=self._n,
            group_ratio=ratios.group,
        )

    def charge(self, ratios: Ratios, usage: Usage | None, generated_text: str) -> Charge:
        return Charge(quota=self.estimate(ratios, 0), prompt_tokens=0, completion_tokens=0)


class SpeechMeter(Meter):
    """Text to speech: characters x ratio, known before the call."""

    def __init__(self, text: str) -> None:
        self._text = text

    def estimate(self, ratios: Ratios, pre_consumed_quota: int) -> int:
        return tts_quota(self._text, model_ratio=ratios.model, group_ratio=ratios.group)

    def charge(self, ratios: Ratios, usage: Usage | None, generated_text: str) -> Charge:
        return Charge(
            quota=self.estimate(ratios, 0), prompt_tokens=len(self._text), completion_tokens=0
        )


class TranscriptMeter(Meter):
    """Speech to text: the transcript's tokens x ratio (One API forgot the ratio)."""

    def __init__(self, counter: TokenCounter) -> None:
        self._counter = counter

    def estimate(self, ratios: Ratios, pre_consumed_quota: int) -> int:
        return pre_consume_quota(
            0,
            0,
            model_ratio=ratios.model,
            group_ratio=ratios.group,
            pre_consumed_quota=pre_consumed_quota,
        )

    def charge(self, ratios: Ratios, usage: Usage | None, generated_text: str) -> Charge:
        tokens = self._counter.text(transcript_text(generated_text))
        quota = stt_quota(tokens, model_ratio=ratios.model, group_ratio=ratios.group)
        return Charge(quota=quota, prompt_tokens=0, completion_tokens=tokens)


def transcript_text(body: str) -> str:
    """The words of a transcription answer, whatever `response_format` the client chose."""
    stripped = body.lstrip()
    if stripped.startswith("{"):
        try:
            parsed = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return body
        if isinstance(parsed, dict) and isinstance(parsed.get("text"), str):
            return str(parsed["text"])
    return body


def text_modes() -> frozenset[Mode]:
    return frozenset({Mode.CHAT, Mode.COMPLETIONS, Mode.EDITS, Mode.EMBEDDINGS, Mode.MODERATIONS})
