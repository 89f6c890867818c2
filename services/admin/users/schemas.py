"""Wire shapes of `/api/user` and `/api/topup`: One API's field names, exactly.

Lengths are One API's (`validate:"max=12"` and so on); numeric bounds are those of the columns,
so a request the database could not store is refused here with a message, never failed there
with a 500. Quotas stop at 2**53 - 1, the largest integer a JavaScript front-end reads exactly.

No response carries `password` or `access_token`: a user's own access token is shown once, by
`GET /api/user/token` which makes it, and an administrator never sees another user's.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from libs.common.db.models import UserRole
from services.admin.schemas import RowId, StorableText

QUOTA_LIMIT: Final = 2**53 - 1
"""The largest quota accepted or reached through these routes (exact in JavaScript)."""
USERNAME_MAX_CHARS: Final = 12
DISPLAY_NAME_MAX_CHARS: Final = 20
PASSWORD_MIN_CHARS: Final = 8
PASSWORD_MAX_CHARS: Final = 20
GROUP_MAX_CHARS: Final = 64
REMARK_MAX_CHARS: Final = 1000
KEYWORD_MAX_CHARS: Final = 191


def _password_length(value: str) -> str:
    """Empty means "unchanged" where a password is optional; otherwise One API's 8..20."""
    if value and not PASSWORD_MIN_CHARS <= len(value) <= PASSWORD_MAX_CHARS:
        raise ValueError(f"密码长度应为 {PASSWORD_MIN_CHARS} 到 {PASSWORD_MAX_CHARS} 个字符")
    return value


UserId = RowId
Username = Annotated[StorableText, Field(max_length=USERNAME_MAX_CHARS)]
DisplayName = Annotated[StorableText, Field(max_length=DISPLAY_NAME_MAX_CHARS)]
Password = Annotated[
    StorableText, Field(max_length=PASSWORD_MAX_CHARS), AfterValidator(_password_length)
]
NewPassword = Annotated[Password, Field(description="8 to 20 characters; empty: unchanged")]
Group = Annotated[StorableText, Field(max_length=GROUP_MAX_CHARS)]
Keyword = Annotated[StorableText, Field(max_length=KEYWORD_MAX_CHARS)]


class UserRead(BaseModel):
    """A user as One API returns it, without `password` and `access_token`."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: int
    status: int
    email: str
    github_id: str
    wechat_id: str
    lark_id: str
    oidc_id: str
    quota: int
    used_quota: int
    request_count: int
    group: str
    aff_code: Annotated[str, BeforeValidator(lambda value: value or "")]
    inviter_id: int


class SelfUpdate(BaseModel):
    """`PUT /api/user/self`. An empty or missing field keeps its value, as in One API, whose
    edit page sends back every field it read (quota, role, ...): those are ignored here."""

    username: Username = ""
    display_name: DisplayName = ""
    password: NewPassword = ""


class UserCreate(BaseModel):
    """`POST /api/user/`: a common user; `role` is only checked, as One API does."""

    username: Annotated[Username, Field(min_length=1)]
    password: Annotated[Password, Field(min_length=PASSWORD_MIN_CHARS)]
    display_name: DisplayName = ""
    role: UserRole | None = None


class UserUpdate(BaseModel):
    """`PUT /api/user/`. An empty or missing field keeps its value; `password` is changed only
    when given. Status changes go through `POST /api/user/manage`."""

    id: UserId
    username: Username = ""
    display_name: DisplayName = ""
    password: NewPassword = ""
    group: Group = ""
    quota: Annotated[int, Field(ge=-QUOTA_LIMIT, le=QUOTA_LIMIT)] | None = None
    role: UserRole | None = None


class UserManage(BaseModel):
    """`POST /api/user/manage`: an action on the user called `username`."""

    username: Annotated[Username, Field(min_length=1)]
    action: Literal["disable", "enable", "delete", "promote", "demote"]


class ManagedUser(BaseModel):
    """What `POST /api/user/manage` answers: the user's role and status after the action."""

    role: int
    status: int


class AdminTopUp(BaseModel):
    """`POST /api/topup`: add `quota` to a user's balance (never take it away)."""

    user_id: UserId
    quota: Annotated[int, Field(ge=0, le=QUOTA_LIMIT)]
    remark: Annotated[StorableText, Field(max_length=REMARK_MAX_CHARS)] = ""
