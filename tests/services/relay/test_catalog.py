"""Channel selection: priority tiers, weights, retries to lower tiers, cooldowns."""

from __future__ import annotations

import random
import time
from collections import Counter

from libs.common.db.models import Ability, Channel, ChannelStatus
from services.relay.catalog import build_catalog

MODEL = "gpt-4o-mini"


def channel(
    cid: int,
    *,
    priority: int = 0,
    weight: int = 0,
    status: int = 1,
    mapping: str | None = None,
    base_url: str = "",
) -> Channel:
    return Channel(
        id=cid,
        type=1,
        key=f"k{cid}",
        name=f"c{cid}",
        status=status,
        weight=weight,
        priority=priority,
        models=MODEL,
        group="default",
        base_url=base_url,
        model_mapping=mapping,
        config="",
    )


def ability(
    cid: int, *, priority: int = 0, enabled: bool = True, group: str = "default"
) -> Ability:
    return Ability(group=group, model=MODEL, channel_id=cid, enabled=enabled, priority=priority)


def test_the_highest_tier_is_used_first() -> None:
    catalog = build_catalog(
        [channel(1, priority=10), channel(2, priority=0)],
        [ability(1, priority=10), ability(2, priority=0)],
        {},
    )
    picks = {catalog.select("default", MODEL).id for _ in range(50)}  # type: ignore[union-attr]
    assert picks == {1}


def test_weights_are_honoured_within_a_tier() -> None:
    catalog = build_catalog(
        [channel(1, weight=9), channel(2, weight=0)], [ability(1), ability(2)], {}
    )
    rng = random.Random(7)
    counts = Counter(catalog.select("default", MODEL, rng=rng).id for _ in range(2000))  # type: ignore[union-attr]
    # weight 9 counts as 10, weight 0 as 1: about 10:1
    assert 8 < counts[1] / counts[2] < 12.5


def test_a_retry_moves_below_the_failed_tier_and_never_reuses_a_failed_channel() -> None:
    catalog = build_catalog(
        [channel(1, priority=10), channel(2, priority=10), channel(3, priority=5)],
        [ability(1, priority=10), ability(2, priority=10), ability(3, priority=5)],
        {},
    )
    retry = catalog.select("default", MODEL, exclude=[1], below_priority=10)
    assert retry is not None
    assert retry.id == 3
    last = catalog.select("default", MODEL, exclude=[1, 3], below_priority=5)
    assert last is not None
    assert last.id == 2  # no lower tier left: any channel not yet tried
    assert catalog.select("default", MODEL, exclude=[1, 2, 3]) is None


def test_disabled_channels_and_abilities_are_not_routed() -> None:
    catalog = build_catalog(
        [channel(1, status=ChannelStatus.MANUALLY_DISABLED), channel(2), channel(3)],
        [ability(1), ability(2, enabled=False), ability(3), ability(3, group="vip")],
        {},
    )
    assert {catalog.select("default", MODEL).id for _ in range(20)} == {3}  # type: ignore[union-attr]
    assert catalog.models_for_group("vip") == [MODEL]
    assert catalog.select("default", "other-model") is None


def test_a_cooling_channel_is_a_last_resort() -> None:
    catalog = build_catalog([channel(1), channel(2)], [ability(1), ability(2)], {})
    cooling = {1: time.monotonic() + 60}
    assert {catalog.select("default", MODEL, cooling=cooling).id for _ in range(20)} == {2}  # type: ignore[union-attr]
    only = catalog.select("default", MODEL, exclude=[2], cooling=cooling)
    assert only is not None
    assert only.id == 1


def test_model_mapping_and_default_base_url() -> None:
    catalog = build_catalog(
        [channel(1, mapping='{"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "x": ""}')],
        [ability(1)],
        {},
    )
    entry = catalog.channels[1]
    assert entry.upstream_model(MODEL) == "gpt-4o-mini-2024-07-18"
    assert entry.upstream_model("x") == "x"  # an empty target maps nothing
    assert entry.info.base_url == "https://api.openai.com"


def test_invalid_ratio_options_fall_back_to_the_defaults() -> None:
    catalog = build_catalog([], [], {"ModelRatio": "{not json", "RetryTimes": "3"})
    assert catalog.pricing.model_ratio(MODEL) > 0
    assert catalog.options.integer("RetryTimes") == 3
