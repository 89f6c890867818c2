"""Wire shapes of `/api/token`: One API's field names, exactly.

Bounds are those of the columns (INTEGER ids, BIGINT quotas and times), so a request the
database could not store is refused here with a message, never failed there with a 500.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from libs.common.db.models import NEVER_EXPIRES, TokenStatus
from services.admin.schemas import INT64_MAX, RowId, storable_text

TOKEN_NAME_MAX_CHARS: Final = 30
"""One API refuses longer token names ("令牌名称过长")."""
COMMA_LIST_MAX_CHARS: Final = 16_000
"""A TEXT column holds 65,535 bytes on MySQL/MariaDB: 16,000 characters fit in any encoding."""


Quota = Annotated[int, Field(ge=0, le=INT64_MAX)]
ExpiredTime = Annotated[
    int, Field(ge=NEVER_EXPIRES, le=INT64_MAX, description="Unix seconds; -1: never expires")
]
TokenName = Annotated[str, Field(max_length=TOKEN_NAME_MAX_CHARS), AfterValidator(storable_text)]
SearchKeyword = Annotated[str, Field(max_length=256), AfterValidator(storable_text)]


def _comma_items(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _model_list(value: str) -> str:
    """`"gpt-4o, gpt-4o-mini,"` -> `"gpt-4o,gpt-4o-mini"`; empty means every model."""
    return ",".join(dict.fromkeys(_comma_items(value)))


def _subnet_list(value: str) -> str:
    """Comma-separated networks (`10.0.0.0/8`) or addresses; empty means any address.

    The relay matches with the same parser (`ipaddress.ip_network`, not strict), so what is
    accepted here is exactly what it enforces; a typo is refused rather than stored as a
    subnet that would never match.
    """
    items = _comma_items(value)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"无效的网段：{item}") from None
    return ",".join(items)


ModelList = Annotated[
    str,
    Field(max_length=COMMA_LIST_MAX_CHARS, description="comma list; empty: every model"),
    AfterValidator(storable_text),
    AfterValidator(_model_list),
]
SubnetList = Annotated[
    str,
    Field(
        max_length=COMMA_LIST_MAX_CHARS,
        description="comma list of CIDRs (10.0.0.0/8) or addresses; empty: any address",
    ),
    AfterValidator(storable_text),
    AfterValidator(_subnet_list),
]


def _empty_if_null(value: str | None) -> str:
    # One API's UI splits these strings; a null would break its edit form.
    return value or ""


class TokenRead(BaseModel):
    """A token as One API returns it: `key` without the `sk-` the UI shows before it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    key: str
    status: int
    name: str
    created_time: int
    accessed_time: int
    expired_time: int
    remain_quota: int
    unlimited_quota: bool
    used_quota: int
    models: Annotated[str, BeforeValidator(_empty_if_null)]
    subnet: Annotated[str, BeforeValidator(_empty_if_null)]


class TokenCreate(BaseModel):
    """`POST /api/token/`. The key, owner and times are the server's, never the caller's."""

    name: TokenName = ""
    expired_time: ExpiredTime = NEVER_EXPIRES
    remain_quota: Quota = 0
    unlimited_quota: bool = False
    models: ModelList | None = ""
    subnet: SubnetList | None = ""


class TokenUpdate(BaseModel):
    """`PUT /api/token/`: `status` alone with `?status_only=true`, the other fields otherwise.

    A field left out keeps its value (One API would zero it; its UI always sends them all).
    """

    id: RowId
    status: TokenStatus | None = None
    name: TokenName | None = None
    expired_time: ExpiredTime | None = None
    remain_quota: Quota | None = None
    unlimited_quota: bool | None = None
    models: ModelList | None = None
    subnet: SubnetList | None = None
