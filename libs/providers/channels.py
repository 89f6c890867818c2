"""A `channels` row read the one way the relay and the health service both need."""

from __future__ import annotations

from typing import Any

import orjson

from libs.common.db.models import Channel
from libs.providers.base import ChannelInfo
from libs.providers.channel_types import default_base_url


def json_object(text: str | None) -> dict[str, Any]:
    """A JSON object column (config, model_mapping); anything else reads as empty."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def channel_info(row: Channel) -> ChannelInfo:
    """What an adaptor may know of the channel; the base URL defaults by type."""
    return ChannelInfo(
        id=row.id,
        type=row.type,
        key=row.key,
        base_url=(row.base_url or "").rstrip("/") or default_base_url(row.type),
        config=json_object(row.config),
        other=row.other or "",
    )


def channel_models(row: Channel) -> tuple[str, ...]:
    """The comma list of models, in the operator's order."""
    return tuple(m.strip() for m in (row.models or "").split(",") if m.strip())


def model_mapping(row: Channel) -> dict[str, str]:
    """`{"asked": "sent upstream"}`; an empty target maps nothing."""
    return {str(k): str(v) for k, v in json_object(row.model_mapping).items() if v}
