"""What every feature's wire shapes share: One API's envelope, and the bounds of storable input.

Bounds are those of the columns (INTEGER ids, BIGINT quotas and times, text any backend can
hold), so a request the database could not store is refused with a message, never failed there
with a 500.
"""

from __future__ import annotations

from typing import Annotated, Final, Generic, TypeVar

from fastapi import Path
from pydantic import AfterValidator, BaseModel, Field

DataT = TypeVar("DataT")

INT32_MAX: Final = 2**31 - 1
"""The largest id an INTEGER primary key holds."""
INT64_MAX: Final = 2**63 - 1
"""The largest quota or Unix time a BIGINT column holds."""


class Envelope(BaseModel, Generic[DataT]):
    """One API's response envelope: `{"success": bool, "message": str, "data": ...}`."""

    success: bool = True
    message: str = ""
    data: DataT | None = None


def storable_text(value: str) -> str:
    """Refuse what no backend stores: NUL (PostgreSQL) and lone surrogates (not UTF-8)."""
    if "\x00" in value:
        raise ValueError("不能包含空字符 (NUL)")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("不是有效的 UTF-8 文本") from None
    return value


StorableText = Annotated[str, AfterValidator(storable_text)]
RowId = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A row id in a request body."""
RowIdPath = Annotated[int, Path(ge=1, le=INT32_MAX, description="row id")]
"""A row id in the path (`/api/token/{id}`)."""
