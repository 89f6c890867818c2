"""What the health service passes around: channel snapshots, test and balance outcomes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from libs.common.crypto import SecretBox
from libs.common.db.models import Channel, ChannelStatus
from libs.providers.base import ChannelInfo
from libs.providers.channels import channel_info, channel_models, model_mapping


@dataclass(frozen=True, slots=True)
class ChannelRow:
    """A channel as the health service read it: an immutable snapshot of its row."""

    id: int
    type: int
    name: str
    status: int
    key: str
    base_url: str
    """The channel's own base URL, else its type's default; no trailing slash."""
    config: Mapping[str, Any] = field(default_factory=dict)
    other: str = ""
    models: tuple[str, ...] = ()
    model_mapping: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, row: Channel, secrets: SecretBox) -> ChannelRow:
        """The snapshot of a `channels` row (its base URL defaulted and its key decrypted as the
        relay does); raises UnreadableChannelKeyError."""
        info = channel_info(row, secrets)
        return cls(
            id=row.id,
            type=row.type,
            name=row.name,
            status=row.status,
            key=info.key,
            base_url=info.base_url,
            config=MappingProxyType(dict(info.config)),
            other=info.other,
            models=channel_models(row),
            model_mapping=MappingProxyType(model_mapping(row)),
        )

    @property
    def info(self) -> ChannelInfo:
        """What an adaptor may know of the channel."""
        return ChannelInfo(
            id=self.id,
            type=self.type,
            key=self.key,
            base_url=self.base_url,
            config=self.config,
            other=self.other,
        )

    @property
    def enabled(self) -> bool:
        return self.status == ChannelStatus.ENABLED

    @property
    def auto_disabled(self) -> bool:
        return self.status == ChannelStatus.AUTO_DISABLED


@dataclass(frozen=True, slots=True)
class ProbeOutcome:
    """One test request: what was asked, how it went and how long it took."""

    model: str
    success: bool
    elapsed_ms: int
    message: str = ""
    status_code: int = 0
    error_type: str = ""
    error_code: str = ""
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class BalanceOutcome:
    """One balance query; `balance` is None when it failed or the type has no balance API."""

    balance: float | None
    message: str = ""
    unsupported: bool = False


@dataclass(frozen=True, slots=True)
class Transition:
    """An automatic status change the database accepted (the row was in the expected state)."""

    channel_id: int
    name: str
    type: int
    status: int
    """The new status: `ChannelStatus.AUTO_DISABLED` or `ChannelStatus.ENABLED`."""
    reason: str
    cause: str
    """What triggered it, for metrics: rule, success_rate, slow, balance, test_passed."""
    at: int

    @property
    def disabled(self) -> bool:
        return self.status == ChannelStatus.AUTO_DISABLED
