"""Quota arithmetic: what a request costs, in integer quota (500 000 quota = 1 USD).

Rounding. One API computes in float64, so its results carry binary noise: 10 tokens at ratio
0.7 make 7.000000000000001, which it rounds *up* to 8. Here every ratio is taken at the decimal
value it is written with (its shortest repr, i.e. what the JSON option says: 0.7 is 7/10) and
the arithmetic is exact (`fractions.Fraction`), then rounded once:

- usage charges (text, speech-to-text) round up, as One API's `math.Ceil`, and are at least 1
  when the ratio is not 0 and there were tokens (0 when there were none);
- the pre-charge estimate, images and text-to-speech round down, as One API's `int64(...)`.

Where float64 happens to be exact (ratio 0.075 and 1000 tokens -> 75) the result is One API's
integer; where it is not, the result is the mathematically exact one, which One API would give
with exact arithmetic (and which does not depend on the CPU: Go fuses multiply-adds on arm64).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import lru_cache

from libs.common.pricing.defaults import (
    IMAGE_SIZE_RATIOS,
    PRE_CONSUMED_QUOTA,
    QUOTA_PER_UNIT,
    TRUST_FACTOR,
)
from libs.common.pricing.errors import InvalidQuotaArgumentError

_HD_SQUARE_FACTOR = 2  # dall-e-3 quality "hd" at 1024x1024
_HD_OTHER_FACTOR = Fraction(3, 2)  # dall-e-3 quality "hd" at the other sizes
_MICRO = Decimal("0.000001")


@lru_cache(maxsize=4096)
def exact_ratio(ratio: float) -> Fraction:
    """`ratio` as the decimal it is written with: 0.1 -> 1/10, not 0x3FB999999999999A."""
    if not math.isfinite(ratio) or ratio < 0:
        raise InvalidQuotaArgumentError(
            f"a ratio must be a finite non-negative number, got {ratio!r}"
        )
    return Fraction(repr(float(ratio)))


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise InvalidQuotaArgumentError(f"{name} must not be negative, got {value}")


def text_quota(
    prompt_tokens: int,
    completion_tokens: int,
    *,
    model_ratio: float,
    group_ratio: float = 1.0,
    completion_ratio: float = 1.0,
) -> int:
    """Post-consume charge: ceil((prompt + completion * completion_ratio) * model * group).

    At least 1 when model_ratio * group_ratio != 0 and there were tokens; 0 with no tokens.
    """
    _check_count("prompt_tokens", prompt_tokens)
    _check_count("completion_tokens", completion_tokens)
    if prompt_tokens + completion_tokens == 0:
        return 0
    ratio = exact_ratio(model_ratio) * exact_ratio(group_ratio)
    weighted = prompt_tokens + completion_tokens * exact_ratio(completion_ratio)
    quota = math.ceil(weighted * ratio)
    if ratio != 0 and quota <= 0:
        return 1
    return quota


def pre_consume_quota(
    prompt_tokens: int,
    max_tokens: int | None,
    *,
    model_ratio: float,
    group_ratio: float = 1.0,
    pre_consumed_quota: int = PRE_CONSUMED_QUOTA,
) -> int:
    """Estimate reserved before the upstream call: floor((pre + prompt + max_tokens) * ratio).

    `pre_consumed_quota` is the `PreConsumedQuota` option (500 tokens); `max_tokens` None or 0
    means the request set none.
    """
    _check_count("prompt_tokens", prompt_tokens)
    tokens = pre_consumed_quota + prompt_tokens + (max_tokens or 0)
    return math.floor(tokens * exact_ratio(model_ratio) * exact_ratio(group_ratio))


def is_quota_sufficient(user_quota: int, pre_consumed: int) -> bool:
    """False when the user cannot cover the estimate (403 `insufficient_user_quota`)."""
    return user_quota >= pre_consumed


def pre_charge(user_quota: int, pre_consumed: int) -> int:
    """What to actually charge up front: nothing for a trusted user, else the estimate.

    A user whose quota exceeds 100 times the estimate is trusted and billed only afterwards.
    """
    return 0 if user_quota > TRUST_FACTOR * pre_consumed else pre_consumed


def image_size_ratio(model: str, size: str, quality: str | None = None) -> float:
    """Price multiplier of one image of `size` (1 for sizes the table does not list).

    dall-e-3 in quality "hd" costs twice as much at 1024x1024 and 1.5 times at other sizes.
    """
    ratio = IMAGE_SIZE_RATIOS.get(model, {}).get(size, 1.0)
    if model == "dall-e-3" and quality == "hd":
        return ratio * (_HD_SQUARE_FACTOR if size == "1024x1024" else float(_HD_OTHER_FACTOR))
    return ratio


def is_supported_image_size(model: str, size: str) -> bool:
    """Whether One API accepts `size` for `model` (cogview-3 takes any size)."""
    return model == "cogview-3" or size in IMAGE_SIZE_RATIOS.get(model, {})


def image_quota(
    *,
    model_ratio: float,
    size_ratio: float,
    n: int,
    group_ratio: float = 1.0,
) -> int:
    """Charge for `n` images: floor(model * group * size_ratio * 1000) per image, times n."""
    _check_count("n", n)
    ratio = exact_ratio(model_ratio) * exact_ratio(group_ratio) * exact_ratio(size_ratio)
    return math.floor(ratio * 1000) * n


def tts_quota(text: str, *, model_ratio: float, group_ratio: float = 1.0) -> int:
    """Text-to-speech charge: floor(characters * model * group), charged before the call.

    Counts characters, as OpenAI bills; One API counts UTF-8 bytes, which charges CJK text
    three times over. Inputs beyond `TTS_INPUT_LIMIT` characters are the relay's to reject.
    """
    ratio = exact_ratio(model_ratio) * exact_ratio(group_ratio)
    return math.floor(len(text) * ratio)


def stt_quota(transcript_tokens: int, *, model_ratio: float, group_ratio: float = 1.0) -> int:
    """Speech-to-text charge: the transcript's tokens times the ratio, rounded up.

    One API charges the bare token count and forgets the ratio; this applies it, with the text
    rules (at least 1 for a non-empty transcript at a non-zero ratio).
    """
    return text_quota(transcript_tokens, 0, model_ratio=model_ratio, group_ratio=group_ratio)


def quota_to_usd(quota: int, quota_per_unit: float = QUOTA_PER_UNIT) -> Decimal:
    """The dollar value of `quota` (exact to the precision of `Decimal`)."""
    if not quota_per_unit > 0:
        raise InvalidQuotaArgumentError(f"quota_per_unit must be positive, got {quota_per_unit!r}")
    return Decimal(quota) / Decimal(repr(float(quota_per_unit)))


def format_quota(
    quota: int, *, in_currency: bool = True, quota_per_unit: float = QUOTA_PER_UNIT
) -> str:
    """`$0.000150` (option `DisplayInCurrencyEnabled`) or `75 quota`."""
    if not in_currency:
        return f"{quota} quota"
    usd = quota_to_usd(quota, quota_per_unit).quantize(_MICRO, rounding=ROUND_HALF_EVEN)
    return f"${usd:f}"
