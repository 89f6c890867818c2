"""Ratio tables: One API's defaults, the lookup order, completion rules, options JSON."""

from __future__ import annotations

import dataclasses
import math

import orjson
import pytest

from libs.common.pricing import (
    DEFAULT_GROUP_RATIO,
    DEFAULT_MODEL_RATIO,
    UNKNOWN_MODEL_RATIO,
    InvalidRatioTableError,
    Pricing,
    PricingError,
    merge_defaults,
)

DEFAULT = Pricing.default()


# --- the default data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # hand-evaluated from One API's Go constant expressions (USD=500, RMB=500/7=71)
        ("gpt-4", 15.0),
        ("gpt-4o-mini", 0.075),
        ("o1", 7.5),
        ("dall-e-2", 10.0),  # 0.02 * USD
        ("dall-e-3", 20.0),  # 0.04 * USD
        ("claude-3-opus-20240229", 7.5),  # 15.0 / 1000 * USD
        ("claude-3-5-sonnet-20241022", 1.5),  # 3.0 / 1000 * USD
        ("ERNIE-4.0-8K", 8.52),  # 0.120 * RMB
        ("step-2-16k", 0.002698),  # 0.038 / 1000 * RMB
        ("deepseek-chat", 0.07),  # 0.14 * MILLI_USD
        ("gemini-1.5-flash-8b", 0.01875),  # 0.0375 * MILLI_USD
        ("gemma-7b-it", 0.000035),  # 0.07 / 1000000 * USD
        ("llama3-70b-8192(33)", 1.325),  # 0.00265 / 0.002
        ("meta/meta-llama-3.1-405b-instruct", 4750.0),  # 9.500 * USD
        ("qwen-audio-turbo", 1.4286),
        ("glm-4-flash", 0.0),
        ("xwin-lm/xwin-lm-70b", 1.875),
    ],
)
def test_default_model_ratios_are_one_apis(model: str, expected: float) -> None:
    assert DEFAULT_MODEL_RATIO[model] == expected


def test_default_table_is_complete_and_sane() -> None:
    # One API ships 566 entries; the negative "openrouter/auto" is left out
    assert len(DEFAULT_MODEL_RATIO) == 565
    assert "openrouter/auto" not in DEFAULT_MODEL_RATIO
    assert all(math.isfinite(v) and v >= 0 for v in DEFAULT_MODEL_RATIO.values())
    assert DEFAULT_GROUP_RATIO == {"default": 1.0, "vip": 1.0, "svip": 1.0}


def test_default_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        DEFAULT_MODEL_RATIO["gpt-4"] = 1.0  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.model_ratios = {}  # type: ignore[misc]


# --- model ratio lookup -------------------------------------------------------------------------


def test_typed_key_applies_only_on_its_channel_type() -> None:
    assert DEFAULT.model_ratio("llama3-8b-8192", 33) == 0.15
    assert DEFAULT.model_ratio("llama3-8b-8192", 1) == 0.000025
    assert DEFAULT.model_ratio("llama3-8b-8192") == 0.000025


def test_lookup_order_typed_current_typed_default_name_current_name_default() -> None:
    pricing = Pricing.from_options('{"llama3-8b-8192": 9, "gpt-4": 20}', None, None)
    # the default's typed key beats the option's plain key
    assert pricing.model_ratio("llama3-8b-8192", 33) == 0.15
    # the option's plain key beats the default's plain key
    assert pricing.model_ratio("llama3-8b-8192", 1) == 9.0
    assert pricing.model_ratio("gpt-4", 1) == 20.0
    # the option's typed key beats everything
    typed = Pricing.from_options('{"llama3-8b-8192(33)": 2.5, "gpt-4(14)": 1}', None, None)
    assert typed.model_ratio("llama3-8b-8192", 33) == 2.5
    assert typed.model_ratio("gpt-4", 14) == 1.0
    assert typed.model_ratio("gpt-4", 1) == 15.0


def test_a_default_survives_being_removed_from_the_option() -> None:
    assert Pricing.from_options("{}", "{}", None).model_ratio("gpt-4o") == 2.5


def test_unknown_model_costs_30() -> None:
    assert DEFAULT.model_ratio("no-such-model") == UNKNOWN_MODEL_RATIO == 30.0
    assert DEFAULT.model_ratio("no-such-model", 1) == 30.0
    assert DEFAULT.find_model_ratio("no-such-model") is None
    assert DEFAULT.find_model_ratio("gpt-4") == 15.0


def test_internet_variants_are_priced_as_the_base_model() -> None:
    assert DEFAULT.model_ratio("qwen-turbo-internet") == DEFAULT.model_ratio("qwen-turbo")
    assert DEFAULT.model_ratio("command-r-internet") == DEFAULT.model_ratio("command-r")
    assert DEFAULT.model_ratio("gpt-4-internet") == 30.0


# --- completion ratio ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-3.5-turbo", 3.0),
        ("gpt-3.5-turbo-0125", 3.0),
        ("gpt-3.5-turbo-1106", 2.0),
        ("gpt-3.5-turbo-0613", 4 / 3),
        ("gpt-3.5-turbo-16k", 4 / 3),
        ("gpt-3.5-turbo-instruct", 4 / 3),
        ("gpt-4", 2.0),
        ("gpt-4-32k-0613", 2.0),
        ("gpt-4-turbo", 3.0),
        ("gpt-4-turbo-2024-04-09", 3.0),
        ("gpt-4-1106-preview", 3.0),
        ("gpt-4-vision-preview", 3.0),
        ("gpt-4o", 4.0),
        ("gpt-4o-2024-08-06", 4.0),
        ("gpt-4o-2024-05-13", 3.0),
        ("gpt-4o-mini", 4.0),
        ("chatgpt-4o-latest", 3.0),
        ("o1", 4.0),
        ("o1-mini-2024-09-12", 4.0),
        ("claude-3-5-sonnet-20241022", 5.0),
        ("claude-3-opus-20240229", 5.0),
        ("claude-2.1", 3.0),
        ("claude-instant-1.2", 3.0),
        ("mistral-large-latest", 3.0),
        ("gemini-1.5-pro", 3.0),
        ("gemini-2.0-flash", 3.0),
        ("deepseek-coder", 2.0),
        ("deepseek-chat", 2.0),  # explicit entry 0.28 / 0.14
        ("deepseek-reasoner", 219 / 55),  # explicit entry 2.19 / 0.55
        ("whisper-1", 0.0),  # explicit entry: only input is billed
        ("llama3-70b-8192", 79 / 59),  # 0.79 / 0.59
        ("llama2-70b-4096", 1.25),  # 0.8 / 0.64
        ("command", 2.0),
        ("command-r", 3.0),
        ("command-r-plus", 5.0),
        ("grok-beta", 3.0),
        ("meta/meta-llama-3-70b-instruct", 55 / 13),  # 2.750 / 0.650
        ("mistralai/mixtral-8x7b-instruct-v0.1", 10 / 3),
        ("ibm-granite/granite-3.0-2b-instruct", 8.333333333333334),
        ("qwen-max", 1.0),
        ("text-embedding-3-small", 1.0),
        ("totally-unknown", 1.0),
    ],
)
def test_completion_ratio_by_name(model: str, expected: float) -> None:
    assert DEFAULT.completion_ratio(model) == expected


def test_completion_ratio_typed_keys_and_options() -> None:
    assert DEFAULT.completion_ratio("llama3-70b-8192", 33) == 70 / 53  # 0.0035 / 0.00265
    assert DEFAULT.completion_ratio("llama3-8b-8192", 33) == 2.0
    assert DEFAULT.completion_ratio("llama3-70b-8192", 1) == 79 / 59
    edited = Pricing.from_options(None, '{"gpt-4": 2.5, "my-model": 6}', None)
    assert edited.completion_ratio("gpt-4") == 2.5
    assert edited.completion_ratio("my-model") == 6.0
    assert edited.completion_ratio("deepseek-reasoner") == 219 / 55  # default still applies
    assert DEFAULT.completion_ratio("qwen-max-internet") == 1.0


# --- group ratio --------------------------------------------------------------------------------


def test_group_ratio() -> None:
    assert DEFAULT.group_ratio("default") == 1.0
    assert DEFAULT.group_ratio("vip") == 1.0
    assert DEFAULT.group_ratio("nobody-made-this") == 1.0
    edited = Pricing.from_options(None, None, '{"default": 1, "vip": 0.8, "free": 0}')
    assert edited.group_ratio("vip") == 0.8
    assert edited.group_ratio("free") == 0.0
    assert edited.group_ratio("svip") == 1.0  # no longer in the table: unknown -> 1


# --- options: parse, validate, swap -------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_json", "group_json", "message"),
    [
        ('{"gpt-4": -1}', None, "ModelRatio: the ratio of 'gpt-4' must be a non-negative number"),
        ('{"gpt-4": "15"}', None, "ModelRatio: the ratio of 'gpt-4' must be a number, got a str"),
        ('{"gpt-4": true}', None, "ModelRatio: the ratio of 'gpt-4' must be a number, got a boo"),
        ('{"gpt-4": {"a": 1}}', None, "the ratio of 'gpt-4' must be a number, got an object"),
        ("[1, 2]", None, "ModelRatio must be a JSON object of ratios, got an array"),
        ("15", None, "ModelRatio must be a JSON object of ratios, got a number"),
        ("{gpt-4: 1}", None, "ModelRatio is not valid JSON"),
        (None, '{"vip": null}', "GroupRatio: the ratio of 'vip' must be a number, got null"),
        (None, '{"vip": -0.5}', "GroupRatio: the ratio of 'vip' must be a non-negative number"),
    ],
)
def test_bad_option_values_are_rejected_with_the_key_named(
    model_json: str | None, group_json: str | None, message: str
) -> None:
    with pytest.raises(InvalidRatioTableError) as caught:
        Pricing.from_options(model_json, None, group_json)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, PricingError)


def test_bad_completion_ratio_option_is_rejected() -> None:
    with pytest.raises(InvalidRatioTableError, match="CompletionRatio: the ratio of 'x'"):
        DEFAULT.with_options(completion_ratio_json='{"x": -2}')


def test_a_failed_edit_leaves_the_pricing_in_force_untouched() -> None:
    pricing = Pricing.from_options('{"gpt-4": 20}', None, '{"vip": 2}')
    with pytest.raises(InvalidRatioTableError):
        pricing.with_options(model_ratio_json='{"gpt-4": 1}', group_ratio_json='{"vip": "x"}')
    assert pricing.model_ratio("gpt-4") == 20.0
    assert pricing.group_ratio("vip") == 2.0


def test_with_options_replaces_only_the_given_tables() -> None:
    pricing = Pricing.from_options('{"gpt-4": 20}', '{"gpt-4": 9}', '{"vip": 2}')
    swapped = pricing.with_options(group_ratio_json='{"vip": 3}')
    assert swapped.group_ratio("vip") == 3.0
    assert swapped.model_ratio("gpt-4") == 20.0
    assert swapped.completion_ratio("gpt-4") == 9.0
    assert pricing.group_ratio("vip") == 2.0  # the old object is unchanged


def test_blank_option_means_defaults() -> None:
    pricing = Pricing.from_options("  ", "", "")
    assert pricing.model_ratios is DEFAULT_MODEL_RATIO
    assert pricing.group_ratio_json() == '{"default":1,"svip":1,"vip":1}'


def test_zero_is_a_valid_ratio() -> None:
    assert Pricing.from_options('{"free-model": 0}', None, None).model_ratio("free-model") == 0.0


# --- merging new defaults into stored options ---------------------------------------------------


def test_merge_defaults_adds_missing_and_keeps_stored_values() -> None:
    merged = orjson.loads(merge_defaults('{"gpt-4": 20, "my-model": 3, "gpt-4o-mini": 0.1}'))
    assert merged["gpt-4"] == 20
    assert merged["my-model"] == 3
    assert merged["gpt-4o-mini"] == 0.1
    assert merged["gpt-4o"] == 2.5
    assert len(merged) == len(DEFAULT_MODEL_RATIO) + 1


def test_merge_defaults_output_is_stable_json() -> None:
    once = merge_defaults("{}")
    assert merge_defaults(once) == once
    assert orjson.loads(once) == dict(DEFAULT_MODEL_RATIO)
    keys = list(orjson.loads(once))
    assert keys == sorted(keys)
    assert '"gpt-4":15,' in once  # whole numbers written as One API writes them
    assert merge_defaults("") == once


def test_merge_defaults_for_group_ratio() -> None:
    merged = merge_defaults('{"vip": 2}', DEFAULT_GROUP_RATIO, option="GroupRatio")
    assert merged == '{"default":1,"svip":1,"vip":2}'


def test_merge_defaults_rejects_a_bad_stored_value() -> None:
    with pytest.raises(InvalidRatioTableError, match="ModelRatio: the ratio of 'gpt-4'"):
        merge_defaults('{"gpt-4": -3}')
    with pytest.raises(InvalidRatioTableError, match="not valid JSON"):
        merge_defaults("{")
