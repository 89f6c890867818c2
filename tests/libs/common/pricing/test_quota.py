"""Quota formulas: text, pre-consume and trust, images, speech, display. Values hand-worked."""

from __future__ import annotations

from fractions import Fraction

import pytest

from libs.common.pricing import (
    QUOTA_PER_UNIT,
    InvalidQuotaArgumentError,
    Pricing,
    exact_ratio,
    format_quota,
    image_quota,
    image_size_ratio,
    is_quota_sufficient,
    is_supported_image_size,
    pre_charge,
    pre_consume_quota,
    quota_to_usd,
    stt_quota,
    text_quota,
    tts_quota,
)

DEFAULT = Pricing.default()


# --- text ---------------------------------------------------------------------------------------


def test_text_quota_gpt_4o_mini() -> None:
    # (1000 + 500 * 4) * 0.075 = 225
    quota = text_quota(
        1000,
        500,
        model_ratio=DEFAULT.model_ratio("gpt-4o-mini"),
        completion_ratio=DEFAULT.completion_ratio("gpt-4o-mini"),
        group_ratio=DEFAULT.group_ratio("default"),
    )
    assert quota == 225


@pytest.mark.parametrize(
    ("prompt", "completion", "model_ratio", "group_ratio", "completion_ratio", "expected"),
    [
        (1000, 0, 0.075, 1.0, 1.0, 75),  # float64 agrees: 75.0
        (1, 0, 0.075, 1.0, 1.0, 1),  # 0.075 rounds up
        (3, 0, 0.5, 1.0, 1.0, 2),  # 1.5 rounds up
        (10, 0, 0.7, 1.0, 1.0, 7),  # float64 says 7.000000000000001 -> One API charges 8
        (1000, 0, 0.1, 3.0, 1.0, 300),  # float64 0.1 * 3 -> 300.00000000000006 -> 301
        (0, 3, 0.75, 1.0, 4 / 3, 3),  # gpt-3.5-turbo-0613 completion ratio 4/3
        (100, 100, 15.0, 1.0, 2.0, 4500),  # gpt-4: (100 + 200) * 15
        (1000, 1000, 2.5, 0.9, 4.0, 11250),  # group ratio: (1000 + 4000) * 2.25
        (0, 5, 15.0, 1.0, 0.0, 1),  # whisper-1 completion ratio 0: at least 1
        (1, 0, 0.000025, 1.0, 1.0, 1),  # tiny ratio: at least 1
        (100, 100, 0.0, 1.0, 1.0, 0),  # free model
        (100, 0, 15.0, 0.0, 1.0, 0),  # free group
        (0, 0, 15.0, 1.0, 1.0, 0),  # no tokens: nothing
    ],
)
def test_text_quota(
    prompt: int,
    completion: int,
    model_ratio: float,
    group_ratio: float,
    completion_ratio: float,
    expected: int,
) -> None:
    quota = text_quota(
        prompt,
        completion,
        model_ratio=model_ratio,
        group_ratio=group_ratio,
        completion_ratio=completion_ratio,
    )
    assert quota == expected
    assert isinstance(quota, int)


def test_exact_ratio_reads_the_written_decimal() -> None:
    assert exact_ratio(0.1) * 3 == Fraction(3, 10)
    assert exact_ratio(0.075) * 1000 == 75
    with pytest.raises(ValueError, match="non-negative"):
        exact_ratio(-1.0)
    with pytest.raises(ValueError, match="finite"):
        exact_ratio(float("inf"))


def test_negative_token_counts_are_refused() -> None:
    with pytest.raises(InvalidQuotaArgumentError, match="prompt_tokens"):
        text_quota(-1, 0, model_ratio=1.0)
    with pytest.raises(InvalidQuotaArgumentError, match="n must not be negative"):
        image_quota(model_ratio=1.0, size_ratio=1.0, n=-1)


# --- pre-consume and trust ----------------------------------------------------------------------


def test_pre_consume_quota() -> None:
    # (500 + 100 + 200) * 15
    assert pre_consume_quota(100, 200, model_ratio=15.0) == 12000
    # no max_tokens: (500 + 100) * 15
    assert pre_consume_quota(100, None, model_ratio=15.0) == 9000
    assert pre_consume_quota(100, 0, model_ratio=15.0) == 9000
    # truncated: 510 * 0.075 = 38.25
    assert pre_consume_quota(10, None, model_ratio=0.075) == 38
    # group ratio, and the PreConsumedQuota option
    assert pre_consume_quota(0, None, model_ratio=1.0, group_ratio=0.5) == 250
    assert pre_consume_quota(0, 0, model_ratio=2.0, pre_consumed_quota=1000) == 2000


def test_trust_rule() -> None:
    pre = 12000
    assert pre_charge(1_200_001, pre) == 0  # more than 100x: trusted, nothing up front
    assert pre_charge(1_200_000, pre) == pre  # exactly 100x: not trusted
    assert pre_charge(50_000, pre) == pre
    assert pre_charge(10, 0) == 0


def test_insufficient_quota() -> None:
    assert is_quota_sufficient(12000, 12000)
    assert not is_quota_sufficient(11999, 12000)


# --- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "quality", "n", "expected"),
    [
        ("dall-e-2", "256x256", None, 1, 10000),  # 10 * 1 * 1000
        ("dall-e-2", "512x512", None, 1, 11250),  # 10 * 1.125 * 1000
        ("dall-e-2", "1024x1024", None, 2, 25000),  # 10 * 1.25 * 1000 * 2
        ("dall-e-3", "1024x1024", "standard", 1, 20000),
        ("dall-e-3", "1024x1024", "hd", 1, 40000),  # hd square: x2
        ("dall-e-3", "1792x1024", None, 1, 40000),
        ("dall-e-3", "1024x1792", "hd", 1, 60000),  # 2 * 1.5
        ("dall-e-2", "256x256", "hd", 1, 10000),  # hd only prices dall-e-3
    ],
)
def test_image_quota(model: str, size: str, quality: str | None, n: int, expected: int) -> None:
    size_ratio = image_size_ratio(model, size, quality)
    assert image_quota(model_ratio=DEFAULT.model_ratio(model), size_ratio=size_ratio, n=n) == (
        expected
    )


def test_image_quota_group_ratio_and_truncation() -> None:
    assert image_quota(model_ratio=10.0, group_ratio=0.8, size_ratio=1.0, n=1) == 8000
    assert image_quota(model_ratio=0.0123, size_ratio=1.0, n=3) == 36  # 12.3 -> 12, x3


def test_image_sizes() -> None:
    assert image_size_ratio("cogview-3", "999x999") == 1.0
    assert is_supported_image_size("dall-e-3", "1792x1024")
    assert not is_supported_image_size("dall-e-3", "512x512")
    assert is_supported_image_size("cogview-3", "999x999")
    assert not is_supported_image_size("unknown-image-model", "1024x1024")


# --- speech -------------------------------------------------------------------------------------


def test_tts_quota_counts_characters() -> None:
    ratio = DEFAULT.model_ratio("tts-1")  # 7.5
    assert tts_quota("hello", model_ratio=ratio) == 37  # 37.5 truncated
    assert tts_quota("你好", model_ratio=ratio) == 15  # 2 characters, not 6 bytes
    assert tts_quota("hello", model_ratio=15.0, group_ratio=2.0) == 150
    assert tts_quota("", model_ratio=ratio) == 0


def test_stt_quota_applies_the_ratio() -> None:
    ratio = DEFAULT.model_ratio("whisper-1")  # 15
    assert stt_quota(10, model_ratio=ratio) == 150
    assert stt_quota(10, model_ratio=ratio, group_ratio=0.5) == 75
    assert stt_quota(0, model_ratio=ratio) == 0
    assert stt_quota(1, model_ratio=0.001) == 1


# --- display ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quota", "expected"),
    [
        (500000, "$1.000000"),
        (75, "$0.000150"),
        (1, "$0.000002"),
        (0, "$0.000000"),
        (-150, "$-0.000300"),
        (123456789, "$246.913578"),
    ],
)
def test_format_quota_in_currency(quota: int, expected: str) -> None:
    assert format_quota(quota) == expected


def test_format_quota_as_quota_and_other_units() -> None:
    assert format_quota(75, in_currency=False) == "75 quota"
    assert format_quota(1, quota_per_unit=7) == "$0.142857"
    assert quota_to_usd(QUOTA_PER_UNIT) == 1
    with pytest.raises(ValueError, match="positive"):
        quota_to_usd(1, quota_per_unit=0)
