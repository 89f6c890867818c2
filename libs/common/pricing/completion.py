"""Completion ratios One API derives from the model name when no table has an entry.

The completion ratio is output price / input price. These rules reproduce One API's
`GetCompletionRatio` fallbacks (songquanpeng/one-api `relay/billing/ratio/model.go`); they run
only after the `CompletionRatio` option and the default table missed.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Final

# Family prefixes, checked in this order after the GPT rules.
_PREFIX_RATIOS: Final = (
    ("claude-3", 5.0),
    ("claude-", 3.0),
    ("mistral-", 3.0),
    ("gemini-", 3.0),
    ("deepseek-", 2.0),
)

_FOUR_THIRDS: Final = 4.0 / 3.0

# Exact names, checked last.
_NAMED_RATIOS: Final[Mapping[str, float]] = MappingProxyType(
    {
        "llama2-70b-4096": float(Fraction("0.8") / Fraction("0.64")),
        "llama3-8b-8192": 2.0,
        "llama3-70b-8192": float(Fraction("0.79") / Fraction("0.59")),
        "command": 2.0,
        "command-light": 2.0,
        "command-nightly": 2.0,
        "command-light-nightly": 2.0,
        "command-r": 3.0,
        "command-r-plus": 5.0,
        "grok-beta": 3.0,
        # Replicate (https://replicate.com/pricing)
        "ibm-granite/granite-20b-code-instruct-8k": 5.0,
        "ibm-granite/granite-3.0-2b-instruct": 8.333333333333334,
        "ibm-granite/granite-3.0-8b-instruct": 5.0,
        "ibm-granite/granite-8b-code-instruct-128k": 5.0,
        "meta/llama-2-13b": 5.0,
        "meta/llama-2-13b-chat": 5.0,
        "meta/llama-2-7b": 5.0,
        "meta/llama-2-7b-chat": 5.0,
        "meta/meta-llama-3-8b": 5.0,
        "meta/meta-llama-3-8b-instruct": 5.0,
        "meta/llama-2-70b": float(Fraction("2.750") / Fraction("0.650")),
        "meta/llama-2-70b-chat": float(Fraction("2.750") / Fraction("0.650")),
        "meta/meta-llama-3-70b": float(Fraction("2.750") / Fraction("0.650")),
        "meta/meta-llama-3-70b-instruct": float(Fraction("2.750") / Fraction("0.650")),
        "meta/meta-llama-3.1-405b-instruct": 1.0,
        "mistralai/mistral-7b-instruct-v0.2": 5.0,
        "mistralai/mistral-7b-v0.1": 5.0,
        "mistralai/mixtral-8x7b-instruct-v0.1": float(Fraction("1.000") / Fraction("0.300")),
    }
)


def completion_ratio_by_name(name: str) -> float:
    """The completion ratio One API infers from `name` alone; 1 when nothing matches."""
    if name.startswith("gpt-3.5"):
        # the 0125 generation (and the alias that points at it) costs 3x on output, 1106 2x,
        # the older ones 4/3
        if name == "gpt-3.5-turbo" or name.endswith("0125"):
            return 3.0
        if name.endswith("1106"):
            return 2.0
        return _FOUR_THIRDS
    if name.startswith("gpt-4"):
        if name.startswith("gpt-4o"):
            return 3.0 if name == "gpt-4o-2024-05-13" else 4.0
        if name.startswith("gpt-4-turbo") or name.endswith("preview"):
            return 3.0
        return 2.0
    if name.startswith("o1"):
        return 4.0
    if name == "chatgpt-4o-latest":
        return 3.0
    for prefix, ratio in _PREFIX_RATIOS:
        if name.startswith(prefix):
            return ratio
    return _NAMED_RATIOS.get(name, 1.0)
