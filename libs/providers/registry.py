"""Which adaptor serves which channel type, built once per process from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from libs.providers.azure import AzureAdaptor
from libs.providers.base import Adaptor
from libs.providers.channel_types import (
    ChannelType,
    channel_type,
    channel_type_info,
    default_base_url,
)
from libs.providers.errors import UnsupportedChannelTypeError
from libs.providers.ollama import OllamaAdaptor
from libs.providers.openai import OPENAI_COMPATIBLE_TYPES, OpenAIAdaptor

if TYPE_CHECKING:
    from libs.common.settings import Settings

__all__ = ["Adaptors"]


class Adaptors:
    """The adaptor of every supported channel type.

    Built once per process (`Adaptors.from_settings(settings)`) and passed down; adaptors
    hold no per-request state, so one instance per type serves every request.
    """

    def __init__(self, adaptors: Mapping[ChannelType, Adaptor]) -> None:
        self._adaptors: Mapping[ChannelType, Adaptor] = MappingProxyType(dict(adaptors))

    @classmethod
    def from_settings(cls, settings: Settings) -> Adaptors:
        """The adaptors, configured by `GEMINI_VERSION` and `GEMINI_SAFETY_SETTING`."""
        return cls.build(
            gemini_version=settings.gemini_version,
            gemini_safety_setting=settings.gemini_safety_setting,
        )

    @classmethod
    def build(
        cls, *, gemini_version: str = "v1", gemini_safety_setting: str = "BLOCK_NONE"
    ) -> Adaptors:
        """The adaptors with explicit options (the settings' defaults unless given)."""
        # imported here so that `libs.providers` loads even while a family is being written
        from libs.providers.anthropic import AnthropicAdaptor
        from libs.providers.gemini import GeminiAdaptor

        adaptors: dict[ChannelType, Adaptor] = {
            t: OpenAIAdaptor(t) for t in sorted(OPENAI_COMPATIBLE_TYPES)
        }
        adaptors[ChannelType.Azure] = AzureAdaptor()
        adaptors[ChannelType.Ollama] = OllamaAdaptor()
        adaptors[ChannelType.Anthropic] = AnthropicAdaptor()
        adaptors[ChannelType.Gemini] = GeminiAdaptor(
            version=gemini_version, safety_setting=gemini_safety_setting
        )
        return cls(adaptors)

    @property
    def supported_types(self) -> frozenset[ChannelType]:
        """The channel types an adaptor serves."""
        return frozenset(self._adaptors)

    def supports(self, channel_type_id: int) -> bool:
        try:
            return channel_type(channel_type_id) in self._adaptors
        except UnsupportedChannelTypeError:
            return False

    def for_type(self, channel_type_id: int) -> Adaptor:
        """The adaptor of a channel type; raises UnsupportedChannelTypeError when none."""
        info = channel_type_info(channel_type_id)  # raises for an unknown id
        adaptor = self._adaptors.get(info.type)
        if adaptor is None:
            raise UnsupportedChannelTypeError(
                channel_type_id,
                f"channel type {channel_type_id} ({info.display_name}) is not supported yet",
            )
        return adaptor

    def default_base_url(self, channel_type_id: int) -> str:
        """The base URL a channel of this type uses when its own is empty ("" when none)."""
        return default_base_url(channel_type_id)
