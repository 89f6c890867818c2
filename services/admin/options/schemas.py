"""Wire shapes of `/api/option/`: One API's `{key, value}` pairs."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import BaseModel, Field

MAX_BATCH: Final = 100


class OptionItem(BaseModel):
    """One option as `GET /api/option/` lists it; values are always strings (One API)."""

    key: str
    value: str


class OptionUpdate(BaseModel):
    """`PUT /api/option/`: One API's body.

    One API's front-ends send every value as a string ("true", "500000", JSON text). Booleans and
    numbers are also accepted and read as One API would spell them.
    """

    key: Annotated[str, Field(min_length=1, max_length=191)]
    value: str | bool | int | float

    def text(self) -> str:
        if isinstance(self.value, bool):
            return "true" if self.value else "false"
        return str(self.value)


OptionBatch = Annotated[list[OptionUpdate], Field(min_length=1, max_length=MAX_BATCH)]
"""Beyond One API: several options saved together, all or none."""
