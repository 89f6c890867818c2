"""`/api/option/`: root reads and edits the runtime options (One API's routes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from services.admin.deps import RootDep, UnitOfWorkDep
from services.admin.options import service
from services.admin.options.schemas import OptionBatch, OptionItem, OptionUpdate
from services.admin.schemas import Envelope

router = APIRouter(prefix="/api", tags=["options"])


@router.get("/option/")
async def get_options(root: RootDep, uow: UnitOfWorkDep) -> Envelope[list[OptionItem]]:
    """Every option with its value in force. Secrets are omitted: keys ending in Token or
    Secret, as in One API, and TurnstileSecretKey, which One API lists."""
    return Envelope(data=await service.list_options(uow.session))


@router.put("/option/")
async def update_option(
    root: RootDep,
    uow: UnitOfWorkDep,
    update: Annotated[OptionUpdate | OptionBatch, Body()],
) -> Envelope[None]:
    """Save one option, or a list of them all or none (beyond One API).

    A value that does not fit its option is refused with the reason and nothing is saved.
    An empty value is saved as empty, secrets included: One API's front-ends send a secret only
    when root typed a new one (they never see it), so an empty secret is a deliberate clearing.
    """
    await service.update_options(uow, update if isinstance(update, list) else [update])
    return Envelope()
