"""`/api/user` and `/api/topup`: a caller's own account, and user management by administrators.

Routes (One API's paths, parameters and fields):

    GET    /api/user/self                 the caller's profile                       user
    PUT    /api/user/self                 change username, display name, password    user
    DELETE /api/user/self                 delete the caller's account                user
    GET    /api/user/token                make a new access token and show it once   user
    GET    /api/user/aff                  the caller's invitation code               user
    GET    /api/user/available_models     models the caller's group can use          user
    GET    /api/user/?p=&order=           list users                                 admin
    GET    /api/user/search?keyword=&p=   search users                               admin
    GET    /api/user/{id}                 one user                                   admin
    POST   /api/user/                     create a user                              admin
    PUT    /api/user/                     edit a user                                admin
    DELETE /api/user/{id}                 delete a user                              admin
    POST   /api/user/manage               disable, enable, delete, promote, demote   admin
    POST   /api/topup                     add quota to a user                        admin
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from libs.common.db.models import User
from services.admin.accounts.cookies import start_session
from services.admin.deps import (
    AdminDep,
    OptionsDep,
    PageDep,
    StateDep,
    UnitOfWorkDep,
    UserDep,
)
from services.admin.schemas import Envelope, RowIdPath
from services.admin.users import service
from services.admin.users.schemas import (
    AdminTopUp,
    Keyword,
    ManagedUser,
    SelfUpdate,
    UserCreate,
    UserManage,
    UserRead,
    UserUpdate,
)

router = APIRouter(prefix="/api", tags=["users"])

UserIdPath = RowIdPath


def _read(user: User) -> UserRead:
    return UserRead.model_validate(user)


# --- the caller's own account -------------------------------------------------------------------


@router.get("/user/self")
async def get_self(uow: UnitOfWorkDep, actor: UserDep) -> Envelope[UserRead]:
    """The caller's profile, without password or access token."""
    return Envelope(data=_read(await service.get_self(uow, actor)))


@router.put("/user/self")
async def update_self(
    changes: SelfUpdate,
    request: Request,
    response: Response,
    state: StateDep,
    uow: UnitOfWorkDep,
    actor: UserDep,
) -> Envelope[UserRead]:
    """Change the caller's username, display name or password (empty fields are kept)."""
    updated = await service.update_self(uow, actor, changes)
    if updated.password_changed and actor.by_session:
        # Their other sessions end with the old hash's tag; this one goes on.
        start_session(request, response, state, updated.user)
    return Envelope(data=_read(updated.user))


@router.delete("/user/self")
async def delete_self(uow: UnitOfWorkDep, actor: UserDep) -> Envelope[None]:
    """Delete the caller's account (not root's); its tokens stop working at once."""
    await service.delete_self(uow, actor)
    return Envelope()


@router.get("/user/token")
async def renew_access_token(uow: UnitOfWorkDep, actor: UserDep) -> Envelope[str]:
    """A new access token for `/api`, replacing the caller's previous one."""
    return Envelope(data=await service.renew_access_token(uow, actor))


@router.get("/user/aff")
async def get_aff_code(uow: UnitOfWorkDep, actor: UserDep) -> Envelope[str]:
    """The caller's invitation code (made on first request)."""
    return Envelope(data=await service.get_aff_code(uow, actor))


@router.get("/user/available_models")
async def available_models(uow: UnitOfWorkDep, actor: UserDep) -> Envelope[list[str]]:
    """The models the caller's group can use, sorted."""
    return Envelope(data=await service.available_models(uow, actor))


# --- administration ---------------------------------------------------------------------------


@router.get("/user/")
async def list_users(
    uow: UnitOfWorkDep,
    actor: AdminDep,
    page: PageDep,
    order: Annotated[
        str,
        Query(max_length=32, description="quota, used_quota or request_count; default: id"),
    ] = "",
) -> Envelope[list[UserRead]]:
    """A page of users, newest first or by the `order` column, descending."""
    return Envelope(data=[_read(user) for user in await service.list_users(uow, page, order)])


@router.get("/user/search")
async def search_users(
    uow: UnitOfWorkDep,
    actor: AdminDep,
    page: PageDep,
    keyword: Annotated[Keyword, Query(description="an id, or the start of a name or email")] = "",
) -> Envelope[list[UserRead]]:
    """Users by id, or by the start of their username, email or display name."""
    users = await service.search_users(uow, keyword, page)
    return Envelope(data=[_read(user) for user in users])


@router.get("/user/{user_id:int}")
async def get_user(user_id: UserIdPath, uow: UnitOfWorkDep, actor: AdminDep) -> Envelope[UserRead]:
    """One user of a lower role than the caller's."""
    return Envelope(data=_read(await service.get_user(uow, actor, user_id)))


@router.post("/user/")
async def create_user(
    form: UserCreate, uow: UnitOfWorkDep, actor: AdminDep, options: OptionsDep
) -> Envelope[UserRead]:
    """Create a common user, given `QuotaForNewUser`."""
    return Envelope(data=_read(await service.create_user(uow, actor, options, form)))


@router.put("/user/")
async def update_user(
    form: UserUpdate, uow: UnitOfWorkDep, actor: AdminDep, options: OptionsDep
) -> Envelope[UserRead]:
    """Edit a user of a lower role; a changed quota is recorded in the logs."""
    return Envelope(data=_read(await service.update_user(uow, actor, options, form)))


@router.delete("/user/{user_id:int}")
async def delete_user(user_id: UserIdPath, uow: UnitOfWorkDep, actor: AdminDep) -> Envelope[None]:
    """Delete the account of a user of a lower role."""
    await service.delete_user(uow, actor, user_id)
    return Envelope()


@router.post("/user/manage")
async def manage_user(
    request: UserManage, uow: UnitOfWorkDep, actor: AdminDep
) -> Envelope[ManagedUser]:
    """Disable, enable, delete, promote (root only) or demote a user of a lower role."""
    user = await service.manage_user(uow, actor, request)
    return Envelope(data=ManagedUser(role=user.role, status=user.status))


@router.post("/topup")
async def top_up(
    request: AdminTopUp, uow: UnitOfWorkDep, actor: AdminDep, options: OptionsDep
) -> Envelope[None]:
    """Add quota to the balance of a user of a lower role, with a top-up log."""
    await service.top_up(uow, actor, options, request)
    return Envelope()
