"""`/api/token`: a user's API tokens (One API's routes, fields and messages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.admin.deps import PageDep, UnitOfWorkDep, UserDep
from services.admin.schemas import Envelope, RowIdPath
from services.admin.tokens import service
from services.admin.tokens.schemas import (
    SearchKeyword,
    TokenCreate,
    TokenRead,
    TokenUpdate,
)

router = APIRouter(prefix="/api", tags=["tokens"])

TokenId = RowIdPath


@router.get("/token/")
async def list_tokens(
    actor: UserDep,
    uow: UnitOfWorkDep,
    page: PageDep,
    order: Annotated[
        str, Query(max_length=32, description="remain_quota, used_quota; default: newest first")
    ] = "",
) -> Envelope[list[TokenRead]]:
    tokens = await service.list_tokens(uow, actor.id, page, order)
    return Envelope(data=[TokenRead.model_validate(token) for token in tokens])


@router.get("/token/search")
async def search_tokens(
    actor: UserDep,
    uow: UnitOfWorkDep,
    keyword: Annotated[SearchKeyword, Query(description="name prefix, or the key")] = "",
) -> Envelope[list[TokenRead]]:
    tokens = await service.search_tokens(uow, actor.id, keyword)
    return Envelope(data=[TokenRead.model_validate(token) for token in tokens])


@router.get("/token/{token_id}")
async def get_token(actor: UserDep, uow: UnitOfWorkDep, token_id: TokenId) -> Envelope[TokenRead]:
    token = await service.get_token(uow, actor.id, token_id)
    return Envelope(data=TokenRead.model_validate(token))


@router.post("/token/")
async def create_token(
    actor: UserDep, uow: UnitOfWorkDep, body: TokenCreate
) -> Envelope[TokenRead]:
    token = await service.create_token(uow, actor.id, body)
    return Envelope(data=TokenRead.model_validate(token))


@router.put("/token/")
async def update_token(
    actor: UserDep,
    uow: UnitOfWorkDep,
    body: TokenUpdate,
    status_only: Annotated[bool, Query(description="change the status only")] = False,
) -> Envelope[TokenRead]:
    token = await service.update_token(uow, actor.id, body, status_only=status_only)
    return Envelope(data=TokenRead.model_validate(token))


@router.delete("/token/{token_id}")
async def delete_token(actor: UserDep, uow: UnitOfWorkDep, token_id: TokenId) -> Envelope[None]:
    await service.delete_token(uow, actor.id, token_id)
    return Envelope()
