"""One API's pricing: default ratio tables, the `Pricing` lookups and the quota formulas.

`Pricing` answers "how expensive is this model for this group"; the functions of `quota` turn
token counts (see `libs.common.tokenizer`) and ratios into integer quota.
"""

from __future__ import annotations

from libs.common.pricing.completion import completion_ratio_by_name
from libs.common.pricing.defaults import (
    DEFAULT_COMPLETION_RATIO,
    DEFAULT_GROUP_RATIO,
    DEFAULT_MODEL_RATIO,
    IMAGE_N_RANGE,
    IMAGE_PROMPT_LIMIT,
    IMAGE_SIZE_RATIOS,
    PRE_CONSUMED_QUOTA,
    QUOTA_PER_UNIT,
    TRUST_FACTOR,
    TTS_INPUT_LIMIT,
    UNKNOWN_GROUP_RATIO,
    UNKNOWN_MODEL_RATIO,
)
from libs.common.pricing.errors import (
    InvalidQuotaArgumentError,
    InvalidRatioTableError,
    PricingError,
)
from libs.common.pricing.quota import (
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
from libs.common.pricing.tables import (
    COMPLETION_RATIO_OPTION,
    GROUP_RATIO_OPTION,
    MODEL_RATIO_OPTION,
    Pricing,
    dump_ratio_table,
    merge_defaults,
    parse_ratio_table,
    validate_ratio_table,
)

__all__ = [
    "COMPLETION_RATIO_OPTION",
    "DEFAULT_COMPLETION_RATIO",
    "DEFAULT_GROUP_RATIO",
    "DEFAULT_MODEL_RATIO",
    "GROUP_RATIO_OPTION",
    "IMAGE_N_RANGE",
    "IMAGE_PROMPT_LIMIT",
    "IMAGE_SIZE_RATIOS",
    "MODEL_RATIO_OPTION",
    "PRE_CONSUMED_QUOTA",
    "QUOTA_PER_UNIT",
    "TRUST_FACTOR",
    "TTS_INPUT_LIMIT",
    "UNKNOWN_GROUP_RATIO",
    "UNKNOWN_MODEL_RATIO",
    "InvalidQuotaArgumentError",
    "InvalidRatioTableError",
    "Pricing",
    "PricingError",
    "completion_ratio_by_name",
    "dump_ratio_table",
    "exact_ratio",
    "format_quota",
    "image_quota",
    "image_size_ratio",
    "is_quota_sufficient",
    "is_supported_image_size",
    "merge_defaults",
    "parse_ratio_table",
    "pre_charge",
    "pre_consume_quota",
    "quota_to_usd",
    "stt_quota",
    "text_quota",
    "tts_quota",
    "validate_ratio_table",
]
