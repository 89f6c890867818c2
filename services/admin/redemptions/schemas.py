"""Wire shapes of `/api/redemption` and `/api/user/topup`: One API's field names, exactly."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from libs.common.db.models import RedemptionStatus
from services.admin.schemas import INT64_MAX, RowId, storable_text

REDEMPTION_NAME_MAX_CHARS: Final = 20
"""One API: "兑换码名称长度必须在1-20之间"."""
MAX_CODES_PER_BATCH: Final = 100
"""One API: "一次兑换码批量生成的个数不能大于 100"."""

RedemptionName = Annotated[
    str,
    Field(min_length=1, max_length=REDEMPTION_NAME_MAX_CHARS),
    AfterValidator(storable_text),
]
RedemptionQuota = Annotated[int, Field(gt=0, le=INT64_MAX)]


class RedemptionRead(BaseModel):
    """A code as One API returns it to admins, key included (they hand codes out).

    `user_id` is the admin who created the code until it is redeemed, then the user who
    redeemed it.
    """

    model_config = ConfigDict(from_attributes=True)

    id: int
    user_id: int
    key: str
    status: int
    name: str
    quota: int
    created_time: int
    redeemed_time: int


class RedemptionCreate(BaseModel):
    """`POST /api/redemption/`: `count` codes worth `quota` each."""

    name: RedemptionName
    quota: RedemptionQuota
    count: Annotated[int, Field(ge=1, le=MAX_CODES_PER_BATCH)]


class RedemptionUpdate(BaseModel):
    """`PUT /api/redemption/`: `status` alone with `?status_only=true`, name and quota otherwise.

    A field left out keeps its value.
    """

    id: RowId
    status: RedemptionStatus | None = None
    name: RedemptionName | None = None
    quota: RedemptionQuota | None = None


class TopUpRequest(BaseModel):
    """`POST /api/user/topup`: redeem a code for the caller."""

    key: Annotated[
        str,
        Field(max_length=128, description="the redemption code"),
        AfterValidator(storable_text),
        AfterValidator(str.strip),
    ] = ""
