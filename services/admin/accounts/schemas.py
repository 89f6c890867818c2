"""Wire shapes of the account routes (One API's JSON field names)."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

USERNAME_MAX_LENGTH: Final = 12
PASSWORD_MIN_LENGTH: Final = 8
PASSWORD_MAX_LENGTH: Final = 20
DISPLAY_NAME_MAX_LENGTH: Final = 20
EMAIL_MAX_LENGTH: Final = 191
BCRYPT_MAX_BYTES: Final = 72

Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=USERNAME_MAX_LENGTH)
]
Password = Annotated[str, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)]


class _Form(BaseModel):
    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL refuses NUL in text, and bcrypt would cut a password short at one.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class RegisterRequest(_Form):
    """`POST /api/user/register`. `aff_code` is the inviter's code, not the new user's."""

    username: Username
    password: Password
    display_name: Annotated[str, Field(max_length=DISPLAY_NAME_MAX_LENGTH)] = ""
    email: Annotated[str, Field(max_length=EMAIL_MAX_LENGTH)] = ""
    verification_code: Annotated[str, Field(max_length=64)] = ""
    aff_code: Annotated[str, Field(max_length=32)] = ""

    @field_validator("display_name", "email", "verification_code", "aff_code", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        # One API's front-ends send null for a field left empty.
        return "" if value is None else value

    @field_validator("password")
    @classmethod
    def _fits_bcrypt(cls, value: str) -> str:
        if len(value.encode()) > BCRYPT_MAX_BYTES:
            raise ValueError(f"at most {BCRYPT_MAX_BYTES} bytes")
        return value


class LoginRequest(_Form):
    """`POST /api/user/login`: `username` may also be the account's email address."""

    username: Annotated[str, Field(min_length=1, max_length=EMAIL_MAX_LENGTH)]
    password: Annotated[str, Field(min_length=1, max_length=128)]


class PasswordResetRequest(_Form):
    """`POST /api/user/reset`: the address and token of a reset link."""

    email: Annotated[str, Field(min_length=1, max_length=EMAIL_MAX_LENGTH)]
    token: Annotated[str, Field(min_length=1, max_length=64)]


class LoggedInUser(BaseModel):
    """What a login answers (One API's `setupLogin`): never a password or an access token."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: int
    status: int
    group: str
