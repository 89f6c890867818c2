"""The SQL of the health service: channels it reads and the columns it owns.

Health owns a channel's automatic status transitions, `test_time`, `response_time`, `balance`
and `balance_updated_time`, and writes test and system logs. Every status change is
conditional on the status it expects (`WHERE status = ...`), so two replicas acting on the
same evidence change a row once, and a manually disabled channel is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.crypto import SecretBox
from libs.common.db.models import (
    Ability,
    Channel,
    ChannelStatus,
    Log,
    Option,
    User,
    UserRole,
    UserStatus,
)
from libs.providers.channels import UnreadableChannelKeyError
from services.health.schemas import ChannelRow

logger = logging.getLogger(__name__)


async def load_options(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(Option.key, Option.value))
    return {str(key): str(value or "") for key, value in rows}


async def load_channels(
    session: AsyncSession,
    secrets: SecretBox,
    *,
    ids: Collection[int] | None = None,
    statuses: Collection[int] | None = None,
) -> list[ChannelRow]:
    """Channels by id (all when `ids` is None), optionally only those in `statuses`; keys
    decrypted with `secrets`. A channel whose key cannot be decrypted is left out."""
    query = select(Channel).order_by(Channel.id)
    if ids is not None:
        query = query.where(Channel.id.in_(list(ids)))
    if statuses is not None:
        query = query.where(Channel.status.in_(list(statuses)))
    channels = []
    for row in (await session.execute(query)).scalars().all():
        try:
            channels.append(ChannelRow.of(row, secrets))
        except UnreadableChannelKeyError as exc:
            logger.error("%s; the channel is not tested", exc)
    return channels


async def channel_statuses(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(select(Channel.id, Channel.status))
    return {int(channel_id): int(status) for channel_id, status in rows}


async def record_test(
    session: AsyncSession, channel_id: int, *, response_time_ms: int, tested_at: int
) -> None:
    await session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(response_time=response_time_ms, test_time=tested_at)
    )


async def store_balance(
    session: AsyncSession, channel_id: int, *, balance: float, updated_at: int
) -> None:
    await session.execute(
        update(Channel)
        .where(Channel.id == channel_id)
        .values(balance=balance, balance_updated_time=updated_at)
    )


async def change_status(session: AsyncSession, channel_id: int, *, expected: int, new: int) -> bool:
    """Move a channel from `expected` to `new` with its abilities; False if it was not there.

    Abilities follow the channel (enabled exactly when the channel is), as One API's
    `UpdateAbilityStatus` does; both change in the caller's transaction.
    """
    result = await session.execute(
        update(Channel)
        .where(Channel.id == channel_id, Channel.status == expected)
        .values(status=new)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return False
    await session.execute(
        update(Ability)
        .where(Ability.channel_id == channel_id)
        .values(enabled=new == ChannelStatus.ENABLED)
    )
    return True


async def root_emails(session: AsyncSession) -> list[str]:
    """The email addresses of enabled root users (usually one)."""
    rows = await session.execute(
        select(User.email)
        .where(User.role == UserRole.ROOT, User.status == UserStatus.ENABLED, User.email != "")
        .order_by(User.id)
    )
    return [str(email) for (email,) in rows if email]


async def add_logs(session: AsyncSession, logs: Sequence[Log]) -> None:
    session.add_all(list(logs))
