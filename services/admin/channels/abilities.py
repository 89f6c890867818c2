"""A channel's `abilities`: what the relay selects channels from.

One row per (group, model) of the channel, `enabled` exactly when the channel is, with the
channel's priority. They are rebuilt from the channel row in the transaction of every channel
write (create, update, status change), so the relay never sees a channel and its abilities
disagree. One API rebuilt them after its write, in a transaction of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.db.models import Ability, Channel, ChannelStatus
from services.admin.errors import AdminError


def split_names(text: str) -> list[str]:
    """The names of a comma list: trimmed, without empty ones or repeats, in order."""
    names: dict[str, None] = {}
    for part in text.split(","):
        name = part.strip()
        if name:
            names.setdefault(name, None)
    return list(names)


def abilities_of(channel: Channel) -> list[dict[str, object]]:
    """The ability rows `channel` calls for (as insert parameters)."""
    enabled = channel.status == ChannelStatus.ENABLED
    return [
        {
            "group": group,
            "model": model,
            "channel_id": channel.id,
            "enabled": enabled,
            "priority": channel.priority or 0,
        }
        for group in split_names(channel.group or "")
        for model in split_names(channel.models or "")
    ]


async def remove(session: AsyncSession, channel_ids: Iterable[int]) -> None:
    """Delete every ability of these channels."""
    ids = list(channel_ids)
    if ids:
        await session.execute(delete(Ability).where(Ability.channel_id.in_(ids)))


async def rebuild(session: AsyncSession, channels: Sequence[Channel]) -> None:
    """Replace the abilities of `channels` (already flushed, so they have ids) by the ones
    their rows call for, in the caller's transaction."""
    await remove(session, [channel.id for channel in channels])
    rows = [row for channel in channels for row in abilities_of(channel)]
    if not rows:
        return
    try:
        await session.execute(insert(Ability), rows)
    except IntegrityError:
        # MySQL/MariaDB compare these columns case- and accent-insensitively: "GPT-4" and
        # "gpt-4" are one ability there. The transaction is rolled back with the refusal.
        raise AdminError("模型或分组名称重复（不区分大小写）") from None
