"""The relay's in-memory view of channels, abilities and options, and channel selection.

A `Catalog` is an immutable snapshot read from the database off the hot path (at start, on
`config.changed`, and every SYNC_FREQUENCY seconds) and swapped in whole, so a request sees
one consistent view without locks.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select

from libs.common.crypto import PLAINTEXT, SecretBox
from libs.common.db import Database
from libs.common.db.models import Ability, Channel, ChannelStatus, Option
from libs.common.options import OptionValues
from libs.common.pricing import Pricing
from libs.providers.base import ChannelInfo
from libs.providers.channels import (
    UnreadableChannelKeyError,
    channel_info,
    channel_models,
    model_mapping,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ChannelEntry:
    """A channel as the relay routes to it."""

    info: ChannelInfo
    name: str
    status: int
    weight: int
    priority: int
    models: frozenset[str]
    model_mapping: Mapping[str, str]
    system_prompt: str

    @property
    def id(self) -> int:
        return self.info.id

    @property
    def enabled(self) -> bool:
        return self.status == ChannelStatus.ENABLED

    def upstream_model(self, model: str) -> str:
        return self.model_mapping.get(model, model)


@dataclass(frozen=True, slots=True)
class Tier:
    """Channels of one priority for a (group, model); picked by weight."""

    priority: int
    channel_ids: tuple[int, ...]
    weights: tuple[int, ...]


@dataclass(frozen=True)
class Catalog:
    channels: Mapping[int, ChannelEntry] = field(default_factory=dict)
    # (group, model) -> tiers, highest priority first
    routes: Mapping[tuple[str, str], tuple[Tier, ...]] = field(default_factory=dict)
    options: OptionValues = field(default_factory=OptionValues)
    pricing: Pricing = field(default_factory=Pricing.default)

    def models_for_group(self, group: str) -> list[str]:
        return sorted({model for (g, model) in self.routes if g == group})

    def select(
        self,
        group: str,
        model: str,
        *,
        exclude: Iterable[int] = (),
        below_priority: int | None = None,
        cooling: Mapping[int, float] | None = None,
        rng: random.Random | None = None,
    ) -> ChannelEntry | None:
        """A channel for `model` in `group`: the highest tier first, weighted within it.

        `exclude`: channels that already failed this request. `below_priority`: on a retry,
        prefer tiers below the one that failed; when none remain, any tier is used.
        `cooling`: channels that failed recently (id -> until), used only as a last resort.
        """
        tiers = self.routes.get((group, model))
        if not tiers:
            return None
        excluded = set(exclude)
        now = time.monotonic()
        cool = {cid for cid, until in (cooling or {}).items() if until > now}
        pick = (rng or random).choices
        passes: list[tuple[bool, bool]] = [(True, True), (False, True), (False, False)]
        for lower_only, avoid_cooling in passes:
            for tier in tiers:
                if lower_only and below_priority is not None and tier.priority >= below_priority:
                    continue
                candidates = [
                    (cid, weight)
                    for cid, weight in zip(tier.channel_ids, tier.weights, strict=True)
                    if cid not in excluded and not (avoid_cooling and cid in cool)
                ]
                if len(candidates) == 1:
                    return self.channels[candidates[0][0]]
                if candidates:
                    ids = [cid for cid, _ in candidates]
                    # Weight 0 (One API's default) counts as 1: every channel gets traffic.
                    weights = [max(weight, 0) + 1 for _, weight in candidates]
                    return self.channels[pick(ids, weights=weights)[0]]
        return None


def _channel_entry(row: Channel, secrets: SecretBox) -> ChannelEntry:
    return ChannelEntry(
        info=channel_info(row, secrets),
        name=row.name,
        status=row.status,
        weight=row.weight or 0,
        priority=row.priority or 0,
        models=frozenset(channel_models(row)),
        model_mapping=model_mapping(row),
        system_prompt=row.system_prompt or "",
    )


def build_catalog(
    channels: Iterable[Channel],
    abilities: Iterable[Ability],
    options: Mapping[str, str],
    secrets: SecretBox = PLAINTEXT,
) -> Catalog:
    entries: dict[int, ChannelEntry] = {}
    for row in channels:
        try:
            entries[row.id] = _channel_entry(row, secrets)
        except UnreadableChannelKeyError as exc:
            # Left out of routing: sending ciphertext upstream would only earn 401s.
            logger.error("%s; the channel is not used", exc)
    grouped: dict[tuple[str, str], dict[int, list[tuple[int, int]]]] = {}
    for ability in abilities:
        entry = entries.get(ability.channel_id)
        if not ability.enabled or entry is None or not entry.enabled:
            continue
        tiers = grouped.setdefault((ability.group, ability.model), {})
        tiers.setdefault(ability.priority or 0, []).append((entry.id, entry.weight))
    routes = {
        route: tuple(
            Tier(
                priority=priority,
                channel_ids=tuple(cid for cid, _ in members),
                weights=tuple(weight for _, weight in members),
            )
            for priority, members in sorted(by_priority.items(), reverse=True)
        )
        for route, by_priority in grouped.items()
    }
    values = OptionValues(options)
    try:
        pricing = Pricing.from_options(
            values.raw("ModelRatio"), values.raw("CompletionRatio"), values.raw("GroupRatio")
        )
    except Exception:
        logger.exception("stored ratio options are invalid; using the defaults")
        pricing = Pricing.default()
    return Catalog(channels=entries, routes=routes, options=values, pricing=pricing)


async def load_catalog(database: Database, secrets: SecretBox = PLAINTEXT) -> Catalog:
    """Read channels, abilities and options (read-only) into a new snapshot; channel keys are
    decrypted with `secrets` (CRYPTO_SECRET)."""
    async with database.session() as session:
        channels = (await session.execute(select(Channel))).scalars().all()
        abilities = (await session.execute(select(Ability))).scalars().all()
        rows = await session.execute(select(Option.key, Option.value))
        options = {str(key): str(value or "") for key, value in rows}
    return build_catalog(channels, abilities, options, secrets)
