"""One API's small default pricing tables and constants (the large one is `model_ratio_table`).

Sources, songquanpeng/one-api: `relay/billing/ratio/model.go` (completion ratios, fallback 30),
`relay/billing/ratio/group.go` (group ratios), `relay/billing/ratio/image.go` (image sizes, `n`
ranges, prompt limits), `common/config` (`QuotaPerUnit`, `PreConsumedQuota`).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from types import MappingProxyType
from typing import Final

from libs.common.pricing.model_ratio_table import DEFAULT_MODEL_RATIO

__all__ = [
    "DEFAULT_COMPLETION_RATIO",
    "DEFAULT_GROUP_RATIO",
    "DEFAULT_MODEL_RATIO",
    "IMAGE_N_RANGE",
    "IMAGE_PROMPT_LIMIT",
    "IMAGE_SIZE_RATIOS",
    "PRE_CONSUMED_QUOTA",
    "QUOTA_PER_UNIT",
    "TRUST_FACTOR",
    "TTS_INPUT_LIMIT",
    "UNKNOWN_GROUP_RATIO",
    "UNKNOWN_MODEL_RATIO",
]

QUOTA_PER_UNIT: Final = 500_000
"""Quota worth 1 USD (option `QuotaPerUnit`). Model ratio 1 = $0.002 / 1K tokens."""

PRE_CONSUMED_QUOTA: Final = 500
"""Tokens reserved on top of prompt + max_tokens before the upstream call (option)."""

TRUST_FACTOR: Final = 100
"""A user holding more than this many times the pre-charge is not pre-charged at all."""

TTS_INPUT_LIMIT: Final = 4096
"""Longest text-to-speech input, in characters (OpenAI's limit, enforced by the relay)."""

UNKNOWN_MODEL_RATIO: Final = 30.0
"""Ratio of a model found in no table: deliberately expensive ($0.06 / 1K tokens)."""

UNKNOWN_GROUP_RATIO: Final = 1.0

DEFAULT_COMPLETION_RATIO: Final[Mapping[str, float]] = MappingProxyType(
    {
        # AWS Bedrock (channel type 33) llama3: output price / input price
        "llama3-8b-8192(33)": float(Fraction("0.0006") / Fraction("0.0003")),
        "llama3-70b-8192(33)": float(Fraction("0.0035") / Fraction("0.00265")),
        # whisper: only the input is billed
        "whisper-1": 0.0,
        # https://platform.deepseek.com/api-docs/pricing/
        "deepseek-chat": float(Fraction("0.28") / Fraction("0.14")),
        "deepseek-reasoner": float(Fraction("2.19") / Fraction("0.55")),
    }
)
"""The explicit `CompletionRatio` entries; name rules (see `completion`) cover the rest."""

DEFAULT_GROUP_RATIO: Final[Mapping[str, float]] = MappingProxyType(
    {"default": 1.0, "vip": 1.0, "svip": 1.0}
)

IMAGE_SIZE_RATIOS: Final[Mapping[str, Mapping[str, float]]] = MappingProxyType(
    {
        "dall-e-2": MappingProxyType({"256x256": 1.0, "512x512": 1.125, "1024x1024": 1.25}),
        "dall-e-3": MappingProxyType({"1024x1024": 1.0, "1024x1792": 2.0, "1792x1024": 2.0}),
        "ali-stable-diffusion-xl": MappingProxyType(
            {"512x1024": 1.0, "1024x768": 1.0, "1024x1024": 1.0, "576x1024": 1.0, "1024x576": 1.0}
        ),
        "ali-stable-diffusion-v1.5": MappingProxyType(
            {"512x1024": 1.0, "1024x768": 1.0, "1024x1024": 1.0, "576x1024": 1.0, "1024x576": 1.0}
        ),
        "wanx-v1": MappingProxyType({"1024x1024": 1.0, "720x1280": 1.0, "1280x720": 1.0}),
        "step-1x-medium": MappingProxyType(
            {
                "256x256": 1.0,
                "512x512": 1.0,
                "768x768": 1.0,
                "1024x1024": 1.0,
                "1280x800": 1.0,
                "800x1280": 1.0,
            }
        ),
    }
)
"""Price multiplier of each supported size, per image model. Sizes not listed cost 1x."""

IMAGE_N_RANGE: Final[Mapping[str, tuple[int, int]]] = MappingProxyType(
    {
        "dall-e-2": (1, 10),
        "dall-e-3": (1, 1),
        "ali-stable-diffusion-xl": (1, 4),
        "ali-stable-diffusion-v1.5": (1, 4),
        "wanx-v1": (1, 4),
        "cogview-3": (1, 1),
        "step-1x-medium": (1, 1),
    }
)
"""Allowed number of images per request (inclusive), per image model."""

IMAGE_PROMPT_LIMIT: Final[Mapping[str, int]] = MappingProxyType(
    {
        "dall-e-2": 1000,
        "dall-e-3": 4000,
        "ali-stable-diffusion-xl": 4000,
        "ali-stable-diffusion-v1.5": 4000,
        "wanx-v1": 4000,
        "cogview-3": 833,
        "step-1x-medium": 4000,
    }
)
"""Longest image prompt, per image model."""
