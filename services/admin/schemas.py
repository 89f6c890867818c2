"""One API's response envelope: `{"success": bool, "message": str, "data": ...}`."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel

DataT = TypeVar("DataT")


class Envelope(BaseModel, Generic[DataT]):
    success: bool = True
    message: str = ""
    data: DataT | None = None
