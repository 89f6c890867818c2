"""A `channels` row read the one way the relay and the health service both need.

The key is read through a `SecretBox` built from `CRYPTO_SECRET`: a sealed key (``enc:v1:``)
is decrypted here, a plaintext one (One API's rows, or no secret set) is used as stored. A key
that cannot be decrypted raises `UnreadableChannelKeyError`; callers leave that channel out
rather than send ciphertext upstream.
"""

from __future__ import annotations

from typing import Any

import orjson

from libs.common.crypto import SecretBox, UnreadableSecretError
from libs.common.db.models import Channel
from libs.providers.base import ChannelInfo, ProviderError
from libs.providers.channel_types import default_base_url


class UnreadableChannelKeyError(ProviderError):
    """The channel's key is encrypted and this process cannot decrypt it (CRYPTO_SECRET unset
    or different from the one that encrypted it)."""

    def __init__(self, channel_id: int, reason: str) -> None:
        super().__init__(f"the key of channel #{channel_id} cannot be read: {reason}")
        self.channel_id = channel_id


def json_object(text: str | None) -> dict[str, Any]:
    """A JSON object column (config, model_mapping); anything else reads as empty."""
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def channel_key(row: Channel, secrets: SecretBox) -> str:
    """The channel's key in plaintext; raises UnreadableChannelKeyError."""
    try:
        return secrets.open(row.key or "")
    except UnreadableSecretError as exc:
        raise UnreadableChannelKeyError(row.id, str(exc)) from None


def channel_info(row: Channel, secrets: SecretBox) -> ChannelInfo:
    """What an adaptor may know of the channel; the base URL defaults by type.

    Raises UnreadableChannelKeyError when the key cannot be decrypted.
    """
    return ChannelInfo(
        id=row.id,
        type=row.type,
        key=channel_key(row, secrets),
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
