"""`/api/redemption` (admins manage codes) and `/api/user/topup` (a user redeems one)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.admin.deps import AdminDep, OptionsDep, PageDep, UnitOfWorkDep, UserDep
from services.admin.redemptions import service
from services.admin.redemptions.schemas import (
    RedemptionCreate,
    RedemptionRead,
    RedemptionUpdate,
    TopUpRequest,
)
from services.admin.schemas import Envelope, RowIdPath
from services.admin.tokens.schemas import SearchKeyword

router = APIRouter(prefix="/api", tags=["redemptions"])

RedemptionId = RowIdPath


@router.get("/redemption/")
async def list_redemptions(
    actor: AdminDep, uow: UnitOfWorkDep, page: PageDep
) -> Envelope[list[RedemptionRead]]:
    redemptions = await service.list_redemptions(uow, page)
    return Envelope(data=[RedemptionRead.model_validate(row) for row in redemptions])


@router.get("/redemption/search")
async def search_redemptions(
    actor: AdminDep,
    uow: UnitOfWorkDep,
    keyword: Annotated[SearchKeyword, Query(description="the id, or a name prefix")] = "",
) -> Envelope[list[RedemptionRead]]:
    redemptions = await service.search_redemptions(uow, keyword)
    return Envelope(data=[RedemptionRead.model_validate(row) for row in redemptions])


@router.get("/redemption/{redemption_id}")
async def get_redemption(
    actor: AdminDep, uow: UnitOfWorkDep, redemption_id: RedemptionId
) -> Envelope[RedemptionRead]:
    redemption = await service.get_redemption(uow, redemption_id)
    return Envelope(data=RedemptionRead.model_validate(redemption))


@router.post("/redemption/")
async def create_redemptions(
    actor: AdminDep, uow: UnitOfWorkDep, body: RedemptionCreate
) -> Envelope[list[str]]:
    """Creates `count` codes; `data` is their keys, as One API returns them."""
    keys = await service.create_redemptions(uow, actor, body)
    return Envelope(data=keys)


@router.put("/redemption/")
async def update_redemption(
    actor: AdminDep,
    uow: UnitOfWorkDep,
    body: RedemptionUpdate,
    status_only: Annotated[bool, Query(description="change the status only")] = False,
) -> Envelope[RedemptionRead]:
    redemption = await service.update_redemption(uow, body, status_only=status_only)
    return Envelope(data=RedemptionRead.model_validate(redemption))


@router.delete("/redemption/{redemption_id}")
async def delete_redemption(
    actor: AdminDep, uow: UnitOfWorkDep, redemption_id: RedemptionId
) -> Envelope[None]:
    await service.delete_redemption(uow, redemption_id)
    return Envelope()


@router.post("/user/topup")
async def redeem(
    actor: UserDep, uow: UnitOfWorkDep, options: OptionsDep, body: TopUpRequest
) -> Envelope[int]:
    """Redeems a code for the caller; `data` is the quota credited, as One API returns it.

    No critical rate limit, as One API: a code is 32 random letters and digits (190 bits), so
    guessing is hopeless, and that limiter's shared budget would lock out of login a user who
    redeems a stack of codes.
    """
    quota = await service.redeem(uow, actor, body.key, options)
    return Envelope(data=quota)
