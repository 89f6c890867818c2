"""`/api/channel`, `/api/group` and `/api/models`: One API's routes, paths and fields.

Every `/api/channel` route is for admins. Keys are never sent back: the `key` field of a
channel is always empty. Tests and balance refreshes are done by the health service (see
`service.py`); `test/{id}` and `update_balance/{id}` wait for it and answer in One API's
shapes, without `data`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from libs.common.crypto import SecretBox
from services.admin.channels import service
from services.admin.channels.schemas import (
    BalanceAnswer,
    ChannelCreate,
    ChannelOut,
    ChannelTestAnswer,
    ChannelUpdate,
    ModelCatalogue,
    Text,
)
from services.admin.deps import AdminDep, OptionsDep, PageDep, StateDep, UnitOfWorkDep, UserDep
from services.admin.schemas import Envelope, RowIdPath

router = APIRouter(prefix="/api", tags=["channels"])

ChannelIdPath = RowIdPath


def get_secret_box(state: StateDep) -> SecretBox:
    """The box channel keys are sealed with (CRYPTO_SECRET; none: stored as given)."""
    return SecretBox(state.settings.crypto_secret)


SecretsDep = Annotated[SecretBox, Depends(get_secret_box)]


@router.get("/channel/")
@router.get("/channel", include_in_schema=False)
async def list_channels(
    actor: AdminDep, uow: UnitOfWorkDep, page: PageDep
) -> Envelope[list[ChannelOut]]:
    """A page of channels, newest first."""
    channels = await service.list_channels(uow, page)
    return Envelope(data=[ChannelOut.of(channel) for channel in channels])


@router.get("/channel/search")
async def search_channels(
    actor: AdminDep,
    uow: UnitOfWorkDep,
    keyword: Annotated[Text, Query(max_length=128, description="an id, or a name's start")] = "",
) -> Envelope[list[ChannelOut]]:
    """Channels by id or by the start of their name (never by key)."""
    channels = await service.search_channels(uow, keyword)
    return Envelope(data=[ChannelOut.of(channel) for channel in channels])


@router.get("/channel/models")
async def list_all_models(actor: AdminDep) -> ModelCatalogue:
    """Every model the gateway's providers know, in OpenAI's model-list shape."""
    return ModelCatalogue(data=list(service.model_cards()))


@router.get("/channel/test")
async def start_channel_tests(
    actor: AdminDep,
    state: StateDep,
    scope: Annotated[
        Literal["all", "disabled"],
        Query(description="all: enabled and automatically disabled; disabled: the latter"),
    ] = "all",
) -> Envelope[None]:
    """Start testing channels in the background (health records the outcomes)."""
    await service.start_test_round(state.bus, only_disabled=scope == "disabled")
    return Envelope()


@router.get("/channel/test/{channel_id}")
async def run_channel_test(
    actor: AdminDep,
    uow: UnitOfWorkDep,
    state: StateDep,
    channel_id: ChannelIdPath,
    model: Annotated[Text, Query(max_length=191, description="the model to ask")] = "",
) -> ChannelTestAnswer:
    """Test one channel now; `time` is in seconds."""
    wait = service.channel_test_wait_seconds(state.settings.relay_timeout)
    return await service.run_channel_test(uow, state.bus, channel_id, model, wait_seconds=wait)


@router.get("/channel/update_balance")
async def update_all_balances(actor: AdminDep, state: StateDep) -> Envelope[None]:
    """Start refreshing every enabled channel's balance in the background."""
    await service.start_balance_round(state.bus)
    return Envelope()


@router.get("/channel/update_balance/{channel_id}")
async def update_balance(
    actor: AdminDep, uow: UnitOfWorkDep, state: StateDep, channel_id: ChannelIdPath
) -> BalanceAnswer:
    """Refresh one channel's balance now; `balance` is in USD."""
    return await service.refresh_balance(uow, state.bus, channel_id)


@router.get("/channel/{channel_id}")
async def get_channel(
    actor: AdminDep, uow: UnitOfWorkDep, channel_id: ChannelIdPath
) -> Envelope[ChannelOut]:
    return Envelope(data=ChannelOut.of(await service.get_channel(uow, channel_id)))


@router.post("/channel/")
@router.post("/channel", include_in_schema=False)
async def create_channels(
    actor: AdminDep, uow: UnitOfWorkDep, secrets: SecretsDep, request: ChannelCreate
) -> Envelope[list[ChannelOut]]:
    """Add a channel per non-empty line of `key`; `data` lists them (beyond One API)."""
    channels = await service.create_channels(uow, request, secrets)
    return Envelope(data=[ChannelOut.of(channel) for channel in channels])


@router.put("/channel/")
@router.put("/channel", include_in_schema=False)
async def update_channel(
    actor: AdminDep, uow: UnitOfWorkDep, secrets: SecretsDep, request: ChannelUpdate
) -> Envelope[ChannelOut]:
    """Change a channel; fields left out (or empty, as One API's UI sends them) stay."""
    channel = await service.update_channel(uow, request, secrets)
    return Envelope(data=ChannelOut.of(channel))


@router.delete("/channel/disabled")
async def delete_disabled_channels(actor: AdminDep, uow: UnitOfWorkDep) -> Envelope[int]:
    """Delete every disabled channel (by hand or automatically); `data` is how many."""
    return Envelope(data=await service.delete_disabled_channels(uow))


@router.delete("/channel/{channel_id}")
async def delete_channel(
    actor: AdminDep, uow: UnitOfWorkDep, channel_id: ChannelIdPath
) -> Envelope[None]:
    await service.delete_channel(uow, channel_id)
    return Envelope()


@router.get("/group/")
@router.get("/group", include_in_schema=False)
async def list_groups(actor: AdminDep, options: OptionsDep) -> Envelope[list[str]]:
    """The user groups: the keys of the `GroupRatio` option."""
    return Envelope(data=service.group_names(options))


@router.get("/models")
async def list_models_by_type(actor: UserDep) -> Envelope[dict[int, list[str]]]:
    """The models each channel type offers by default, by type id (One API's dashboard)."""
    return Envelope(data={kind: list(models) for kind, models in service.models_by_type().items()})
