"""`Pricing`: the three ratio tables root edits (`ModelRatio`, `CompletionRatio`, `GroupRatio`).

A `Pricing` never changes. When root saves one of the options, build a new one with
`with_options(...)` (which validates first) and replace the reference the service holds: readers
see either the old tables or the new ones, never a mix.

Lookup order, as in One API (songquanpeng/one-api `relay/billing/ratio`): for a model `m` on a
channel of type `t`, `m(t)` in the option table, `m(t)` in the defaults, `m` in the option
table, `m` in the defaults; a model found nowhere costs `UNKNOWN_MODEL_RATIO` (30). Completion
ratios look up the same four keys and then fall back to name rules (`completion`). The option
tables replace each other wholesale but never hide a default: a key root deletes from the
option still resolves to its default value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import orjson

from libs.common.pricing.completion import completion_ratio_by_name
from libs.common.pricing.defaults import (
    DEFAULT_COMPLETION_RATIO,
    DEFAULT_GROUP_RATIO,
    DEFAULT_MODEL_RATIO,
    UNKNOWN_GROUP_RATIO,
    UNKNOWN_MODEL_RATIO,
)
from libs.common.pricing.errors import InvalidRatioTableError

MODEL_RATIO_OPTION = "ModelRatio"
COMPLETION_RATIO_OPTION = "CompletionRatio"
GROUP_RATIO_OPTION = "GroupRatio"

_INTERNET_SUFFIX = "-internet"


def _strip_internet(name: str, prefixes: tuple[str, ...]) -> str:
    # Qwen (and, for model ratios, Cohere) "-internet" variants are priced as the base model.
    if name.endswith(_INTERNET_SUFFIX) and name.startswith(prefixes):
        return name[: -len(_INTERNET_SUFFIX)]
    return name


def parse_ratio_table(option: str, text: str) -> dict[str, float]:
    """Read a ratio option: a JSON object whose values are non-negative numbers.

    Raises InvalidRatioTableError naming `option` and, for a bad value, its key.
    """
    return validate_ratio_table(option, _load_object(option, text))


def validate_ratio_table(option: str, table: Mapping[str, Any]) -> dict[str, float]:
    """Check every value of `table` is a finite non-negative number; return it as floats."""
    checked: dict[str, float] = {}
    for key, ratio in table.items():
        if isinstance(ratio, bool) or not isinstance(ratio, int | float):
            raise InvalidRatioTableError(
                f"{option}: the ratio of {key!r} must be a number, got {_json_kind(ratio)}"
            )
        if not math.isfinite(ratio) or ratio < 0:
            raise InvalidRatioTableError(
                f"{option}: the ratio of {key!r} must be a non-negative number, got {ratio!r}"
            )
        checked[key] = float(ratio)
    return checked


def dump_ratio_table(table: Mapping[str, float | int]) -> str:
    """Serialise a ratio table as One API does: keys sorted, whole numbers without `.0`."""
    plain = {
        key: int(ratio) if isinstance(ratio, float) and ratio.is_integer() else ratio
        for key, ratio in table.items()
    }
    return orjson.dumps(plain, option=orjson.OPT_SORT_KEYS).decode()


def merge_defaults(
    stored_json: str,
    defaults: Mapping[str, float] = DEFAULT_MODEL_RATIO,
    *,
    option: str = MODEL_RATIO_OPTION,
) -> str:
    """Add the default entries `stored_json` lacks; stored values win. Run at start-up.

    One API does this for `ModelRatio`, so models added in a new release get a price while the
    admin's edits are kept. Raises InvalidRatioTableError when the stored value is not valid.
    """
    stored = _load_object(option, stored_json) if stored_json.strip() else {}
    validate_ratio_table(option, stored)
    merged: dict[str, float | int] = dict(defaults)
    merged.update(stored)
    return dump_ratio_table(merged)


@dataclass(frozen=True, slots=True)
class Pricing:
    """The ratio tables in force. Immutable: swap the whole object when an option changes.

    Build it with `default`, `from_options` or `with_options`, which hand it read-only tables.
    """

    model_ratios: Mapping[str, float]
    completion_ratios: Mapping[str, float]
    group_ratios: Mapping[str, float]

    @classmethod
    def default(cls) -> Pricing:
        """The tables of a fresh installation."""
        return cls(DEFAULT_MODEL_RATIO, DEFAULT_COMPLETION_RATIO, DEFAULT_GROUP_RATIO)

    @classmethod
    def from_options(
        cls,
        model_ratio_json: str | None,
        completion_ratio_json: str | None,
        group_ratio_json: str | None,
    ) -> Pricing:
        """Build from the three option values; `None` or blank means "not stored": defaults."""
        return cls.default().with_options(
            model_ratio_json=model_ratio_json,
            completion_ratio_json=completion_ratio_json,
            group_ratio_json=group_ratio_json,
        )

    def with_options(
        self,
        *,
        model_ratio_json: str | None = None,
        completion_ratio_json: str | None = None,
        group_ratio_json: str | None = None,
    ) -> Pricing:
        """A copy with the given option values replacing their tables.

        None keeps a table as it is; a blank value restores the default table. Everything is
        validated before anything is built, so a bad value leaves no half-made object behind;
        raises InvalidRatioTableError.
        """
        model = _table_or(MODEL_RATIO_OPTION, model_ratio_json, self.model_ratios)
        completion = _table_or(
            COMPLETION_RATIO_OPTION, completion_ratio_json, self.completion_ratios
        )
        group = _table_or(GROUP_RATIO_OPTION, group_ratio_json, self.group_ratios)
        return Pricing(model, completion, group)

    def model_ratio(self, model: str, channel_type: int | None = None) -> float:
        """Price of `model` (1 = $0.002 / 1K tokens) on a channel of `channel_type`."""
        ratio = self.find_model_ratio(model, channel_type)
        return UNKNOWN_MODEL_RATIO if ratio is None else ratio

    def find_model_ratio(self, model: str, channel_type: int | None = None) -> float | None:
        """Like `model_ratio`, but None for a model no table prices (to log or reject it)."""
        name = _strip_internet(model, ("qwen-", "command-"))
        return _lookup(name, channel_type, self.model_ratios, DEFAULT_MODEL_RATIO)

    def completion_ratio(self, model: str, channel_type: int | None = None) -> float:
        """Output-token price relative to input tokens for `model` on `channel_type`."""
        name = _strip_internet(model, ("qwen-",))
        ratio = _lookup(name, channel_type, self.completion_ratios, DEFAULT_COMPLETION_RATIO)
        return completion_ratio_by_name(name) if ratio is None else ratio

    def group_ratio(self, group: str) -> float:
        """Multiplier of the user group; 1 for a group the table does not name."""
        return self.group_ratios.get(group, UNKNOWN_GROUP_RATIO)

    def model_ratio_json(self) -> str:
        return dump_ratio_table(self.model_ratios)

    def completion_ratio_json(self) -> str:
        return dump_ratio_table(self.completion_ratios)

    def group_ratio_json(self) -> str:
        return dump_ratio_table(self.group_ratios)


def _lookup(
    name: str,
    channel_type: int | None,
    current: Mapping[str, float],
    default: Mapping[str, float],
) -> float | None:
    if channel_type is not None:
        typed = f"{name}({channel_type})"
        ratio = current.get(typed)
        if ratio is None:
            ratio = default.get(typed)
        if ratio is not None:
            return ratio
    ratio = current.get(name)
    return default.get(name) if ratio is None else ratio


def _table_or(option: str, text: str | None, keep: Mapping[str, float]) -> Mapping[str, float]:
    if text is None:
        return keep
    if not text.strip():
        return _default_table(option)
    return MappingProxyType(parse_ratio_table(option, text))


def _default_table(option: str) -> Mapping[str, float]:
    return {
        MODEL_RATIO_OPTION: DEFAULT_MODEL_RATIO,
        COMPLETION_RATIO_OPTION: DEFAULT_COMPLETION_RATIO,
        GROUP_RATIO_OPTION: DEFAULT_GROUP_RATIO,
    }[option]


def _load_object(option: str, text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidRatioTableError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRatioTableError(
            f"{option} must be a JSON object of ratios, got {_json_kind(value)}"
        )
    return value


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
