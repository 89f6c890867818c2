"""Root's options: every option with its effective value, and saving changes all or nothing.

A change is checked whole before anything is written: each value against its kind
(`validation.normalize`), then the rules across options on the state it would produce
(`validation.check_prerequisites`). Only then are the rows upserted, and `config.changed` for the
keys is announced once the transaction commits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.options import OPTIONS, OptionDef, OptionValues
from libs.common.pricing import (
    COMPLETION_RATIO_OPTION,
    DEFAULT_COMPLETION_RATIO,
    DEFAULT_MODEL_RATIO,
    MODEL_RATIO_OPTION,
    InvalidRatioTableError,
    merge_defaults,
    quota_to_usd,
)
from services.admin.deps import UnitOfWork
from services.admin.errors import AdminError
from services.admin.options import repository
from services.admin.options.schemas import OptionItem, OptionUpdate
from services.admin.options.validation import check_prerequisites, definition_of, normalize

# Pricing looks a model up in these defaults when root's table does not name it, so the
# effective table is the defaults overlaid with what root saved. (GroupRatio has no such
# fallback: a group root removed is gone.)
_RATIO_DEFAULTS: Final[Mapping[str, Mapping[str, float]]] = {
    MODEL_RATIO_OPTION: DEFAULT_MODEL_RATIO,
    COMPLETION_RATIO_OPTION: DEFAULT_COMPLETION_RATIO,
}


async def list_options(session: AsyncSession) -> list[OptionItem]:
    """Every option root may read, in catalogue order, with defaults filled in.

    Secrets (`OptionDef.hidden`) are left out, as One API leaves out keys ending in Token or
    Secret. Rows the catalogue does not name (left by other One API versions) are not options
    here and are not listed.
    """
    stored = await repository.load_all(session)
    return [
        OptionItem(key=key, value=effective_value(definition, stored.get(key)))
        for key, definition in OPTIONS.items()
        if not definition.hidden
    ]


def effective_value(definition: OptionDef, stored: str | None) -> str:
    """What the option is in force: the stored value, else the default; ratio tables merged."""
    value = definition.default if stored is None else stored
    defaults = _RATIO_DEFAULTS.get(definition.key)
    if defaults is None:
        return value
    try:
        return merge_defaults(value, defaults, option=definition.key)
    except InvalidRatioTableError:
        return value  # shown as stored, so root can see and correct it


async def update_options(uow: UnitOfWork, updates: Sequence[OptionUpdate]) -> None:
    """Save `updates` together, or refuse them all with the first reason found."""
    changes: dict[str, str] = {}
    for update in updates:
        definition = definition_of(update.key)
        if definition.key in changes:
            raise AdminError(f"配置项 {definition.key} 重复")
        changes[definition.key] = normalize(definition, update.text())
    stored = await repository.load_all(uow.session)
    check_prerequisites(OptionValues(stored), OptionValues({**stored, **changes}), changes)
    await repository.save(uow.session, changes)
    uow.changed("option", keys=list(changes))


def describe_quota(quota: int, options: OptionValues) -> str:
    """An amount as One API's logs write it: `＄0.002000 额度`, or `1000 点额度` when the site
    does not display currency."""
    per_unit = options.number("QuotaPerUnit")
    if not options.flag("DisplayInCurrencyEnabled") or not (
        math.isfinite(per_unit) and per_unit > 0
    ):
        return f"{quota} 点额度"
    return f"＄{quota_to_usd(quota, per_unit):.6f} 额度"
