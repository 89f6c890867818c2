"""One API's rules for API tokens.

A token belongs to one user, whatever their role: everyone, root included, sees and changes only
their own, and another user's token reads as not found. A token's quota is its own budget,
independent of the owner's quota (both are checked by the relay), and a user may hold any
number of tokens; One API limits neither.

Every write announces `config.changed` for the token with its key after the commit, so relays
drop the cached token within a second.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from libs.common.db.models import NEVER_EXPIRES, Token, TokenStatus
from services.admin.deps import Page, UnitOfWork
from services.admin.errors import AdminError, NotFound
from services.admin.security import new_token_key
from services.admin.tokens import repository
from services.admin.tokens.schemas import TokenCreate, TokenUpdate

EXPIRED_CANNOT_BE_ENABLED = "令牌已过期，无法启用，请先修改令牌过期时间，或者设置为永不过期"
EXHAUSTED_CANNOT_BE_ENABLED = (
    "令牌可用额度已用尽，无法启用，请先修改令牌剩余额度，或者设置为无限额度"
)
STATUS_REQUIRED = "请提供令牌状态 status"
STATUS_NOT_SETTABLE = "令牌状态只能设为启用（1）或禁用（2）"


class TokenNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("令牌")


async def list_tokens(uow: UnitOfWork, user_id: int, page: Page, order: str) -> Sequence[Token]:
    return await repository.list_page(
        uow.session, user_id, order=order, offset=page.offset, limit=page.size
    )


async def search_tokens(uow: UnitOfWork, user_id: int, keyword: str) -> Sequence[Token]:
    return await repository.search(uow.session, user_id, keyword)


async def get_token(uow: UnitOfWork, user_id: int, token_id: int) -> Token:
    token = await repository.get(uow.session, token_id, user_id)
    if token is None:
        raise TokenNotFound()
    return token


async def create_token(uow: UnitOfWork, user_id: int, data: TokenCreate) -> Token:
    now = int(time.time())
    token = Token(
        user_id=user_id,
        key=new_token_key(),
        status=TokenStatus.ENABLED,
        name=data.name,
        created_time=now,
        accessed_time=now,
        expired_time=data.expired_time,
        remain_quota=data.remain_quota,
        unlimited_quota=data.unlimited_quota,
        used_quota=0,
        models=data.models,
        subnet=data.subnet,
    )
    uow.session.add(token)
    await uow.session.flush()
    _announce(uow, token)
    return token


async def update_token(
    uow: UnitOfWork, user_id: int, data: TokenUpdate, *, status_only: bool
) -> Token:
    """With `status_only`, enable or disable; otherwise edit every other field sent.

    Editing never changes the status (One API): a token the relay marked expired or exhausted
    stays so until its owner enables it, which is refused while it is still expired or
    exhausted.
    """
    token = await get_token(uow, user_id, data.id)
    if status_only:
        _set_status(token, data.status, now=int(time.time()))
    else:
        _edit(token, data)
    await uow.session.flush()
    _announce(uow, token)
    return token


async def delete_token(uow: UnitOfWork, user_id: int, token_id: int) -> None:
    token = await get_token(uow, user_id, token_id)
    await uow.session.delete(token)
    await uow.session.flush()
    _announce(uow, token)


def _set_status(token: Token, status: TokenStatus | None, *, now: int) -> None:
    if status is None:
        raise AdminError(STATUS_REQUIRED)
    if status not in (TokenStatus.ENABLED, TokenStatus.DISABLED):
        # Expired and exhausted are facts the relay records, not choices.
        raise AdminError(STATUS_NOT_SETTABLE)
    if status == TokenStatus.ENABLED:
        # One API checks these only when the stored status already says so; the facts are what
        # the relay enforces, so they are checked whatever the stored status.
        if token.expired_time != NEVER_EXPIRES and token.expired_time <= now:
            raise AdminError(EXPIRED_CANNOT_BE_ENABLED)
        if not token.unlimited_quota and token.remain_quota <= 0:
            raise AdminError(EXHAUSTED_CANNOT_BE_ENABLED)
    token.status = int(status)


def _edit(token: Token, data: TokenUpdate) -> None:
    if data.name is not None:
        token.name = data.name
    if data.expired_time is not None:
        token.expired_time = data.expired_time
    if data.remain_quota is not None:
        token.remain_quota = data.remain_quota
    if data.unlimited_quota is not None:
        token.unlimited_quota = data.unlimited_quota
    if data.models is not None:
        token.models = data.models
    if data.subnet is not None:
        token.subnet = data.subnet


def _announce(uow: UnitOfWork, token: Token) -> None:
    uow.changed("token", ids=[token.id], keys=[token.key])
