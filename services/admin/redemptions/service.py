"""One API's redemption codes: admins create them in batches, users redeem them for quota.

Redeeming is one transaction: the code is claimed by a conditional UPDATE, the user's quota is
raised by an SQL increment, and the top-up log is written once that commits. Two requests
redeeming one code credit it once; a refused redemption changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from libs.common.db.models import (
    REDEMPTION_KEY_LENGTH,
    Log,
    LogType,
    Redemption,
    RedemptionStatus,
)
from libs.common.options import OptionValues
from services.admin.deps import Actor, Page, UnitOfWork
from services.admin.errors import AdminError, NotFound
from services.admin.options.service import describe_quota
from services.admin.redemptions import repository
from services.admin.redemptions.schemas import RedemptionCreate, RedemptionUpdate
from services.admin.security import new_secret

NO_CODE = "未提供兑换码"
UNKNOWN_CODE = "兑换失败，无效的兑换码"
USED_CODE = "兑换失败，该兑换码已被使用"
DISABLED_CODE = "兑换失败，该兑换码已被禁用"
QUOTA_OVERFLOW = "兑换失败，充值后的额度超出上限"
STATUS_REQUIRED = "请提供兑换码状态 status"
STATUS_NOT_SETTABLE = "兑换码状态只能设为启用（1）或禁用（2）"
USED_CODE_FROZEN = "该兑换码已被使用，无法修改状态或额度"


class RedemptionNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("兑换码")


async def list_redemptions(uow: UnitOfWork, page: Page) -> Sequence[Redemption]:
    return await repository.list_page(uow.session, offset=page.offset, limit=page.size)


async def search_redemptions(uow: UnitOfWork, keyword: str) -> Sequence[Redemption]:
    return await repository.search(uow.session, keyword)


async def get_redemption(uow: UnitOfWork, redemption_id: int) -> Redemption:
    redemption = await repository.get(uow.session, redemption_id)
    if redemption is None:
        raise RedemptionNotFound()
    return redemption


async def create_redemptions(uow: UnitOfWork, actor: Actor, data: RedemptionCreate) -> list[str]:
    """`data.count` new codes, all or none; returns their keys (the admin hands them out)."""
    now = int(time.time())
    redemptions = [
        Redemption(
            user_id=actor.id,
            key=new_secret(REDEMPTION_KEY_LENGTH),
            status=int(RedemptionStatus.ENABLED),
            name=data.name,
            quota=data.quota,
            created_time=now,
            redeemed_time=0,
        )
        for _ in range(data.count)
    ]
    await repository.add_all(uow.session, redemptions)
    return [redemption.key for redemption in redemptions]


async def update_redemption(
    uow: UnitOfWork, data: RedemptionUpdate, *, status_only: bool
) -> Redemption:
    """With `status_only`, enable or disable; otherwise rename and reprice.

    A used code is a record of a credit: its status and quota no longer change (One API lets
    an admin re-enable it, which would let it be redeemed twice). Its name still may.
    """
    redemption = await get_redemption(uow, data.id)
    if status_only:
        if data.status is None:
            raise AdminError(STATUS_REQUIRED)
        if data.status not in (RedemptionStatus.ENABLED, RedemptionStatus.DISABLED):
            raise AdminError(STATUS_NOT_SETTABLE)
        if not await repository.set_status_unless_used(uow.session, data.id, data.status):
            raise await _refusal(uow, data.id)
    else:
        await _edit(uow, redemption, data)
    return await get_redemption(uow, data.id)


async def delete_redemption(uow: UnitOfWork, redemption_id: int) -> None:
    if not await repository.delete_by_id(uow.session, redemption_id):
        raise RedemptionNotFound()


async def redeem(uow: UnitOfWork, actor: Actor, key: str, options: OptionValues) -> int:
    """Credit the caller with the code's quota; returns the quota credited."""
    if not key:
        raise AdminError(NO_CODE)
    now = int(time.time())
    if not await repository.claim(uow.session, key, user_id=actor.id, now=now):
        status = await repository.status_of(uow.session, key)
        if status is None:
            raise AdminError(UNKNOWN_CODE)
        raise AdminError(USED_CODE if status == RedemptionStatus.USED else DISABLED_CODE)
    quota = await repository.quota_of(uow.session, key)
    if not await repository.credit_user(uow.session, actor.id, quota):
        # Raising rolls the claim back with the rest of the transaction: the code stays usable.
        raise AdminError(QUOTA_OVERFLOW)
    uow.record(
        Log(
            user_id=actor.id,
            username=actor.username,
            created_at=now,
            type=int(LogType.TOPUP),
            content=f"通过兑换码充值 {describe_quota(quota, options)}",
        )
    )
    uow.changed("user", ids=[actor.id])
    return quota


async def _edit(uow: UnitOfWork, redemption: Redemption, data: RedemptionUpdate) -> None:
    if data.quota is not None and data.quota != redemption.quota:
        repriced = await repository.set_quota_unless_used(uow.session, data.id, data.quota)
        if not repriced:
            raise await _refusal(uow, data.id)
    if data.name is not None and not await repository.rename(uow.session, data.id, data.name):
        raise RedemptionNotFound()


async def _refusal(uow: UnitOfWork, redemption_id: int) -> AdminError:
    """Why a conditional update of a code matched nothing: it is gone, or it is used."""
    if await repository.get(uow.session, redemption_id, current=True) is None:
        return RedemptionNotFound()
    return AdminError(USED_CODE_FROZEN)
