"""Users: a caller's own account, and the management of everyone's by administrators.

One API's rules, with its messages:

* Nobody acts on a user of an equal or higher role (`Actor.outranks`), reading included; so
  root, the only role nothing outranks, cannot be disabled, deleted or demoted by anyone, and
  an administrator can neither manage other administrators nor top up or edit themselves.
  (One API lets root act on itself; here a role never acts on its own rank.)
* Only root promotes to administrator.
* Deleting an account is soft, as in One API: status 3 and the username renamed
  `deleted_<uuid>` so the name can be taken again. The row stays for the logs that name it;
  its access token is dropped. Relays are told to forget the user and every token it owns,
  which they then refuse because the user is no longer enabled.
* Balances change by increments computed in the database, so a charge billing commits at the
  same moment is never overwritten. An administrator's edit of `quota` becomes the increment
  from the value read under a row lock; a top-up only ever adds.

Every change a relay caches (status, role, group, quota, username) is announced with
`uow.changed("user", ...)`, published once the transaction is committed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy.exc import IntegrityError

from libs.common.db.models import ACCESS_TOKEN_LENGTH, Log, LogType, User, UserRole, UserStatus
from libs.common.db.seed import generate_aff_code
from libs.common.options import OptionValues
from services.admin.accounts import service as accounts
from services.admin.accounts.service import NewUser
from services.admin.deps import Actor, Page, UnitOfWork
from services.admin.errors import AdminError, NotFound, PermissionDenied
from services.admin.options.service import describe_quota
from services.admin.schemas import INT32_MAX
from services.admin.security import hash_password, new_secret
from services.admin.users import repository
from services.admin.users.schemas import (
    QUOTA_LIMIT,
    AdminTopUp,
    SelfUpdate,
    UserCreate,
    UserManage,
    UserUpdate,
)

NEW_SECRET_ATTEMPTS: Final = 5
"""A fresh random access token or invitation code colliding even once is already unheard of."""
DELETED_PREFIX: Final = "deleted_"

USERNAME_TAKEN: Final = "用户名已存在"
QUOTA_OUT_OF_RANGE: Final = "额度超出允许范围"
AFF_CODE_CLASH: Final = "请重试，系统生成的邀请码重复了"
ACCESS_TOKEN_CLASH: Final = "请重试，系统生成的 access token 重复了"  # noqa: S105 (a message)


@dataclass(frozen=True)
class SelfUpdated:
    user: User
    password_changed: bool


# --- the caller's own account -------------------------------------------------------------------


async def get_self(uow: UnitOfWork, actor: Actor) -> User:
    return await _live_user(uow, actor.id)


async def update_self(uow: UnitOfWork, actor: Actor, changes: SelfUpdate) -> SelfUpdated:
    """Username, display name and password; a new password ends every session but the one
    the endpoint renews (sessions carry a tag of the password hash)."""
    user = await _live_user(uow, actor.id)
    if changes.username and changes.username != user.username:
        await _rename(uow, user, changes.username)
    if changes.display_name:
        user.display_name = changes.display_name
    if changes.password:
        user.password = await asyncio.to_thread(hash_password, changes.password)
    await _flush(uow)
    uow.changed("user", ids=[user.id])
    return SelfUpdated(user, password_changed=bool(changes.password))


async def delete_self(uow: UnitOfWork, actor: Actor) -> None:
    user = await _live_user(uow, actor.id)
    if user.role == UserRole.ROOT:
        raise AdminError("不能删除超级管理员账户")
    await _soft_delete(uow, user)


async def renew_access_token(uow: UnitOfWork, actor: Actor) -> str:
    """A new 32-character access token replacing the old one, which stops working at once."""
    user = await _live_user(uow, actor.id)
    for _ in range(NEW_SECRET_ATTEMPTS):
        candidate = new_secret(ACCESS_TOKEN_LENGTH)
        if not await repository.access_token_taken(uow.session, candidate):
            user.access_token = candidate
            await _flush(uow, ACCESS_TOKEN_CLASH)
            return candidate
    raise AdminError(ACCESS_TOKEN_CLASH)


async def get_aff_code(uow: UnitOfWork, actor: Actor) -> str:
    """The caller's invitation code, made on first request for accounts that have none."""
    user = await _live_user(uow, actor.id)
    if not user.aff_code:
        user.aff_code = await _unused_aff_code(uow)
        await _flush(uow, AFF_CODE_CLASH)
    return user.aff_code


async def available_models(uow: UnitOfWork, actor: Actor) -> list[str]:
    return await repository.group_models(uow.session, actor.group)


# --- administration ---------------------------------------------------------------------------


async def list_users(uow: UnitOfWork, page: Page, order: str) -> Sequence[User]:
    return await repository.list_page(uow.session, page, order)


async def search_users(uow: UnitOfWork, keyword: str, page: Page) -> Sequence[User]:
    return await repository.search_page(uow.session, keyword, page, max_id=INT32_MAX)


async def get_user(uow: UnitOfWork, actor: Actor, user_id: int) -> User:
    user = await _live_user(uow, user_id)
    _require_outranks(actor, user, "无权获取同级或更高等级用户的信息")
    return user


async def create_user(
    uow: UnitOfWork, actor: Actor, options: OptionValues, form: UserCreate
) -> User:
    """A common user, whatever `role` says (One API checks it and then ignores it)."""
    if form.role is not None and not actor.outranks(form.role):
        raise PermissionDenied("无法创建权限大于等于自己的用户")
    if await repository.username_taken(uow.session, form.username):
        raise AdminError(USERNAME_TAKEN)
    password_hash = await asyncio.to_thread(hash_password, form.password)
    display_name = form.display_name or form.username
    # The same gifts as a registration (One API's admin creation goes through `Insert` too).
    return await accounts.create_user(
        uow, options, NewUser(form.username, password_hash, display_name)
    )


async def update_user(
    uow: UnitOfWork, actor: Actor, options: OptionValues, form: UserUpdate
) -> User:
    """Username, display name, password, group, role and quota of a lower-ranked user."""
    user = await _live_user(uow, form.id, for_update=True)
    _require_outranks(actor, user, "无权更新同权限等级或更高权限等级的用户信息")
    if form.role is not None and not actor.outranks(form.role):
        raise PermissionDenied("无权将其他用户权限等级提升到大于等于自己的权限等级")
    if form.username and form.username != user.username:
        await _rename(uow, user, form.username)
    if form.display_name:
        user.display_name = form.display_name
    if form.group:
        user.group = form.group
    if form.role is not None:
        user.role = form.role
    if form.password:
        user.password = await asyncio.to_thread(hash_password, form.password)
    await _flush(uow)
    if form.quota is not None and form.quota != user.quota:
        before = user.quota
        if not await repository.add_quota(
            uow.session, user, form.quota - before, limit=QUOTA_LIMIT
        ):
            raise AdminError(QUOTA_OUT_OF_RANGE)
        _record(
            uow,
            user,
            LogType.MANAGE,
            f"管理员将用户额度从 {describe_quota(before, options)}修改为 "
            f"{describe_quota(user.quota, options)}",
        )
    uow.changed("user", ids=[user.id])
    return user


async def delete_user(uow: UnitOfWork, actor: Actor, user_id: int) -> None:
    user = await _live_user(uow, user_id)
    _require_outranks(actor, user, "无权删除同权限等级或更高权限等级的用户")
    await _soft_delete(uow, user)


async def manage_user(uow: UnitOfWork, actor: Actor, request: UserManage) -> User:
    """disable, enable, delete, promote (root only) or demote the user called `username`."""
    user = await repository.get_by_username(uow.session, request.username)
    if user is None:
        raise NotFound("用户")
    _require_outranks(actor, user, "无权更新同权限等级或更高权限等级的用户信息")
    match request.action:
        case "disable":
            user.status = UserStatus.DISABLED
        case "enable":
            user.status = UserStatus.ENABLED
        case "delete":
            await _soft_delete(uow, user)
            return user
        case "promote":
            if actor.role != UserRole.ROOT:
                raise PermissionDenied("普通管理员用户无法提升其他用户为管理员")
            if user.role >= UserRole.ADMIN:
                raise AdminError("该用户已经是管理员")
            user.role = UserRole.ADMIN
        case "demote":
            if user.role == UserRole.COMMON:
                raise AdminError("该用户已经是普通用户")
            user.role = UserRole.COMMON
    await _flush(uow)
    uow.changed("user", ids=[user.id])
    return user


async def top_up(uow: UnitOfWork, actor: Actor, options: OptionValues, request: AdminTopUp) -> None:
    """Add `quota` to a lower-ranked user's balance, with a top-up log carrying `remark`."""
    user = await _live_user(uow, request.user_id)
    _require_outranks(actor, user, "无权为同权限等级或更高权限等级的用户充值")
    if not await repository.add_quota(uow.session, user, request.quota, limit=QUOTA_LIMIT):
        raise AdminError(QUOTA_OUT_OF_RANGE)
    remark = request.remark or f"通过 API 充值 {describe_quota(request.quota, options)}"
    _record(uow, user, LogType.TOPUP, remark, quota=request.quota)
    uow.changed("user", ids=[user.id])


# --- helpers ------------------------------------------------------------------------------------


async def _live_user(uow: UnitOfWork, user_id: int, *, for_update: bool = False) -> User:
    user = await repository.get(uow.session, user_id, for_update=for_update)
    if user is None:
        raise NotFound("用户")
    return user


def _require_outranks(actor: Actor, user: User, message: str) -> None:
    if not actor.outranks(user.role):
        raise PermissionDenied(message)


async def _rename(uow: UnitOfWork, user: User, username: str) -> None:
    if await repository.username_taken(uow.session, username):
        raise AdminError(USERNAME_TAKEN)
    user.username = username


async def _soft_delete(uow: UnitOfWork, user: User) -> None:
    user.username = DELETED_PREFIX + uuid.uuid4().hex
    user.status = UserStatus.DELETED
    user.access_token = None
    await _flush(uow)
    uow.changed("user", ids=[user.id])
    tokens = await repository.tokens_of(uow.session, user.id)
    if tokens:
        uow.changed("token", ids=[id_ for id_, _ in tokens], keys=[key for _, key in tokens])


async def _unused_aff_code(uow: UnitOfWork) -> str:
    for _ in range(NEW_SECRET_ATTEMPTS):
        candidate = generate_aff_code()
        if not await repository.aff_code_taken(uow.session, candidate):
            return candidate
    raise AdminError(AFF_CODE_CLASH)


async def _flush(uow: UnitOfWork, clash_message: str = USERNAME_TAKEN) -> None:
    """Write pending changes now, so a unique index refusing them (a username taken by a
    concurrent request) is answered with a message rather than failing the commit."""
    try:
        await uow.session.flush()
    except IntegrityError:
        raise AdminError(clash_message) from None


def _record(
    uow: UnitOfWork, user: User, log_type: LogType, content: str, *, quota: int = 0
) -> None:
    uow.record(
        Log(
            user_id=user.id,
            username=user.username,
            created_at=int(time.time()),
            type=log_type,
            content=content,
            quota=quota,
        )
    )
