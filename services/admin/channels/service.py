"""The rules of channels: what a channel may hold, how it is written, and how tests and balance
refreshes are handed to the health service.

Every write happens in the request's unit of work with the channel's abilities, and announces
`config.changed` (entity "channel") once committed, so relays reload their catalogue. Keys are
sealed with `CRYPTO_SECRET` when it is set and never leave this module in a response.

Tests and balances: the health service owns `test_time`, `response_time`, `balance` and the
automatic status transitions, so the admin asks it over NATS (`health.test`,
`health.balance`) and answers in One API's shapes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from libs.common.bus import Bus, BusError
from libs.common.crypto import SecretBox
from libs.common.db.models import DEFAULT_GROUP, Channel, ChannelStatus
from libs.common.events import (
    BalanceReply,
    BalanceRequest,
    ChannelTestReply,
    ChannelTestRequest,
    EventError,
)
from libs.common.options import OptionValues
from libs.providers import Adaptors, UnsupportedChannelTypeError
from libs.providers.channel_types import channel_type
from services.admin.channels import abilities, repository
from services.admin.channels.abilities import split_names
from services.admin.channels.schemas import (
    MAX_KEY_CHARS,
    MAX_TEXT_CHARS,
    SECRET_CONFIG_KEYS,
    BalanceAnswer,
    ChannelCreate,
    ChannelTestAnswer,
    ChannelUpdate,
    ModelCard,
)
from services.admin.deps import Page, UnitOfWork
from services.admin.errors import AdminError, NotFound

MAX_CHANNELS_PER_CREATE: Final = 1000
"""Keys (lines) one `POST /api/channel/` may hold."""
MAX_MODEL_CHARS: Final = 191
MAX_GROUP_CHARS: Final = 64
MAX_GROUP_LIST_CHARS: Final = 255
DISABLED_STATUSES: Final = (ChannelStatus.MANUALLY_DISABLED, ChannelStatus.AUTO_DISABLED)

DEFAULT_TEST_TIMEOUT_SECONDS: Final = 60.0
"""How long health lets a test take when `RELAY_TIMEOUT` is unset."""
BALANCE_TIMEOUT_SECONDS: Final = 60.0
"""How long health may take to query one balance (up to two upstream requests)."""
REPLY_MARGIN_SECONDS: Final = 10.0
"""Beyond health's own limit, for the bus and the database writes around the upstream call."""
START_TIMEOUT_SECONDS: Final = 5.0
"""How long health may take to say a background round started."""
MODEL_CARD_CREATED: Final = 1626777600
"""One API's `created` of every model it lists."""

CHANNEL = "渠道"
HEALTH_UNAVAILABLE = "健康检查服务（health）未运行或未响应，无法完成：请确认有进程运行 health 目标"


# --- what a channel may hold ------------------------------------------------------------------


def _checked_type(value: int) -> int:
    try:
        return int(channel_type(value))
    except UnsupportedChannelTypeError:
        raise AdminError(f"未知的渠道类型：{value}") from None


def _checked_base_url(value: str) -> str:
    url = value.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        # reading the port checks it: a port that is not a number in range raises
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != -1
    except ValueError:  # a malformed IPv6 address or port
        valid = False
    if not valid:
        raise AdminError("Base URL 必须是 http:// 或 https:// 开头的地址")
    return url


def _key_lines(text: str) -> list[str]:
    """One key per non-empty line, trimmed (a pasted list often ends lines with CR)."""
    lines = [line.strip() for line in text.split("\n")]
    keys = [line for line in lines if line]
    if any(len(key) > MAX_KEY_CHARS for key in keys):
        raise AdminError(f"密钥过长：每个密钥最多 {MAX_KEY_CHARS} 个字符")
    return keys


def _joined(value: str | list[str]) -> list[str]:
    return split_names(value if isinstance(value, str) else ",".join(value))


def _models_text(value: str | list[str]) -> str:
    models = _joined(value)
    if any(len(model) > MAX_MODEL_CHARS for model in models):
        raise AdminError(f"模型名称过长：每个最多 {MAX_MODEL_CHARS} 个字符")
    text = ",".join(models)
    if len(text) > MAX_TEXT_CHARS:
        raise AdminError(f"模型列表过长：最多 {MAX_TEXT_CHARS} 个字符")
    return text


def _group_text(value: str | list[str]) -> str:
    groups = _joined(value)
    if any(len(group) > MAX_GROUP_CHARS for group in groups):
        raise AdminError(f"分组名称过长：每个最多 {MAX_GROUP_CHARS} 个字符")
    text = ",".join(groups)
    if len(text) > MAX_GROUP_LIST_CHARS:
        raise AdminError(f"分组列表过长：最多 {MAX_GROUP_LIST_CHARS} 个字符")
    return text


def _json_object_text(value: str | dict[str, Any], what: str) -> str:
    """The JSON text of an object given as text (kept as written) or as an object."""
    if isinstance(value, dict):
        try:
            text = orjson.dumps(value).decode()
        except orjson.JSONEncodeError:  # a lone surrogate, a huge integer, deep nesting
            raise AdminError(f"{what}必须是合法的 JSON 对象") from None
    else:
        text = value.strip()
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise AdminError(f"{what}必须是合法的 JSON 对象") from None
        if not isinstance(parsed, dict):
            raise AdminError(f"{what}必须是合法的 JSON 对象")
    if len(text) > MAX_TEXT_CHARS:
        raise AdminError(f"{what}过长：最多 {MAX_TEXT_CHARS} 个字符")
    return text


def _is_empty_json(value: str | dict[str, Any]) -> bool:
    """An empty text, or JSON null (what a form sends back for a null it was shown)."""
    return isinstance(value, str) and value.strip() in ("", "null")


def _model_mapping_text(value: str | dict[str, Any] | None) -> str | None:
    """`{"asked": "sent upstream"}` with string values; None (no mapping) when empty."""
    if value is None or _is_empty_json(value):
        return None
    text = _json_object_text(value, "模型映射")
    mapping = orjson.loads(text)
    if not all(isinstance(target, str) for target in mapping.values()):
        raise AdminError("模型映射必须是合法的 JSON 对象，且每个值都是字符串")
    return text if mapping else None


def _config_text(value: str | dict[str, Any]) -> str:
    if _is_empty_json(value):
        return ""
    return _json_object_text(value, "配置（config）")


def _keeping_stored_secrets(config: str, stored: str) -> str:
    """`config` with the stored value of every secret field it leaves empty: reads blank them,
    so a form sends them back empty (see `SECRET_CONFIG_KEYS`)."""
    fields = orjson.loads(config)
    try:
        kept = orjson.loads(stored) if stored.strip() else {}
    except orjson.JSONDecodeError:
        return config
    if not isinstance(kept, dict):
        return config
    missing = {k: kept[k] for k in SECRET_CONFIG_KEYS if not fields.get(k) and kept.get(k)}
    return orjson.dumps({**fields, **missing}).decode() if missing else config


# --- reads ------------------------------------------------------------------------------------


async def list_channels(uow: UnitOfWork, page: Page) -> Sequence[Channel]:
    return await repository.page(uow.session, offset=page.offset, limit=page.size)


async def search_channels(uow: UnitOfWork, keyword: str) -> Sequence[Channel]:
    return await repository.search(uow.session, keyword.strip())


async def get_channel(uow: UnitOfWork, channel_id: int) -> Channel:
    channel = await repository.get(uow.session, channel_id)
    if channel is None:
        raise NotFound(CHANNEL)
    return channel


# --- writes -----------------------------------------------------------------------------------


async def create_channels(
    uow: UnitOfWork, request: ChannelCreate, secrets: SecretBox
) -> list[Channel]:
    """One channel per non-empty line of the key, all named as asked (One API's batch add)."""
    name = request.name.strip()
    keys = _key_lines(request.key)
    if not name or not keys:
        raise AdminError("请填写渠道名称和渠道密钥！")
    if len(keys) > MAX_CHANNELS_PER_CREATE:
        raise AdminError(f"一次最多添加 {MAX_CHANNELS_PER_CREATE} 个渠道")
    models = _models_text(request.models)
    if not models:
        raise AdminError("请至少选择一个模型！")
    fields: dict[str, Any] = {
        "type": _checked_type(request.type),
        "name": name,
        "status": request.status,
        "base_url": _checked_base_url(request.base_url or ""),
        "other": request.other or "",
        "models": models,
        "group": _group_text(request.group) or DEFAULT_GROUP,
        "model_mapping": _model_mapping_text(request.model_mapping),
        "priority": request.priority or 0,
        "weight": request.weight or 0,
        "config": _config_text(request.config or ""),
        "system_prompt": request.system_prompt or None,
        "created_time": int(time.time()),
    }
    channels = [Channel(key=secrets.seal(key), **fields) for key in keys]
    uow.session.add_all(channels)
    await uow.session.flush()
    await abilities.rebuild(uow.session, channels)
    uow.changed("channel", ids=[channel.id for channel in channels])
    return channels


async def update_channel(uow: UnitOfWork, request: ChannelUpdate, secrets: SecretBox) -> Channel:
    """Change what the request sets (see `ChannelUpdate`), then rebuild the abilities."""
    channel = await get_channel(uow, request.id)
    if request.type:
        channel.type = _checked_type(request.type)
    if request.key is not None:
        keys = _key_lines(request.key)
        if len(keys) > 1:
            raise AdminError("编辑渠道时只能填写一个密钥；批量添加请新建渠道")
        if keys:
            channel.key = secrets.seal(keys[0])
    if request.name is not None and request.name.strip():
        channel.name = request.name.strip()
    if request.status:
        channel.status = request.status
    if request.base_url is not None:
        channel.base_url = _checked_base_url(request.base_url)
    if request.other:
        channel.other = request.other
    if request.models is not None and (models := _models_text(request.models)):
        channel.models = models
    if request.group is not None and (group := _group_text(request.group)):
        channel.group = group
    if request.model_mapping is not None:
        channel.model_mapping = _model_mapping_text(request.model_mapping)
    if request.priority is not None:
        channel.priority = request.priority
    if request.weight is not None:
        channel.weight = request.weight
    if request.config is not None and (config := _config_text(request.config)):
        channel.config = _keeping_stored_secrets(config, channel.config or "")
    if request.system_prompt is not None:
        channel.system_prompt = request.system_prompt or None
    await uow.session.flush()
    await abilities.rebuild(uow.session, [channel])
    uow.changed("channel", ids=[channel.id])
    return channel


async def delete_channel(uow: UnitOfWork, channel_id: int) -> None:
    await get_channel(uow, channel_id)
    await repository.delete_channels(uow.session, [channel_id])
    uow.changed("channel", ids=[channel_id])


async def delete_disabled_channels(uow: UnitOfWork) -> int:
    """Delete every channel disabled by hand or automatically; the number deleted."""
    ids = await repository.lock_ids_with_status(uow.session, DISABLED_STATUSES)
    await repository.delete_channels(uow.session, ids)
    if ids:
        uow.changed("channel", ids=ids)
    return len(ids)


# --- tests and balances, by the health service ------------------------------------------------


def channel_test_wait_seconds(relay_timeout_seconds: int) -> float:
    """How long to wait for health to test one channel (its limit is `RELAY_TIMEOUT`)."""
    return float(relay_timeout_seconds or DEFAULT_TEST_TIMEOUT_SECONDS) + REPLY_MARGIN_SECONDS


async def run_channel_test(
    uow: UnitOfWork, bus: Bus, channel_id: int, model: str, *, wait_seconds: float
) -> ChannelTestAnswer:
    """Test one channel now and wait for the outcome (health records it)."""
    await get_channel(uow, channel_id)
    request = ChannelTestRequest(channel_ids=[channel_id], model=model.strip(), wait=True)
    try:
        reply = await bus.request(request, ChannelTestReply, timeout=wait_seconds)
    except (BusError, EventError):
        raise AdminError(HEALTH_UNAVAILABLE) from None
    for result in reply.results:
        if result.channel_id == channel_id:
            return ChannelTestAnswer(
                success=result.success,
                message=result.message,
                time=result.response_time_ms / 1000,
                model=result.model,
            )
    raise AdminError(reply.message or "健康检查服务没有返回测试结果")


async def start_test_round(bus: Bus, *, only_disabled: bool) -> None:
    """Have health test every channel (or the automatically disabled ones) in the background."""
    request = ChannelTestRequest(only_disabled=only_disabled)
    try:
        reply = await bus.request(request, ChannelTestReply, timeout=START_TIMEOUT_SECONDS)
    except (BusError, EventError):
        raise AdminError(HEALTH_UNAVAILABLE) from None
    if not reply.started:
        raise AdminError(reply.message or "测试已在运行中")


async def refresh_balance(uow: UnitOfWork, bus: Bus, channel_id: int) -> BalanceAnswer:
    """Query one channel's balance now and wait for it (health stores it)."""
    await get_channel(uow, channel_id)
    request = BalanceRequest(channel_ids=[channel_id], wait=True)
    try:
        reply = await bus.request(
            request, BalanceReply, timeout=BALANCE_TIMEOUT_SECONDS + REPLY_MARGIN_SECONDS
        )
    except (BusError, EventError):
        raise AdminError(HEALTH_UNAVAILABLE) from None
    for result in reply.results:
        if result.channel_id == channel_id:
            if result.unsupported:
                return BalanceAnswer(success=False, message="该渠道类型不支持查询余额")
            return BalanceAnswer(
                success=result.success, message=result.message, balance=result.balance
            )
    raise AdminError(reply.message or "健康检查服务没有返回余额")


async def start_balance_round(bus: Bus) -> None:
    """Have health refresh every enabled channel's balance in the background."""
    try:
        reply = await bus.request(BalanceRequest(), BalanceReply, timeout=START_TIMEOUT_SECONDS)
    except (BusError, EventError):
        raise AdminError(HEALTH_UNAVAILABLE) from None
    if not reply.started:
        raise AdminError(reply.message or "余额更新已在运行中")


# --- groups and models ------------------------------------------------------------------------


def group_names(options: OptionValues) -> list[str]:
    """The groups of the `GroupRatio` option, in its order (One API's `/api/group`)."""
    try:
        ratios = orjson.loads(options.raw("GroupRatio"))
    except orjson.JSONDecodeError:
        return [DEFAULT_GROUP]
    return [str(name) for name in ratios] if isinstance(ratios, dict) else [DEFAULT_GROUP]


@functools.cache
def models_by_type() -> Mapping[int, tuple[str, ...]]:
    """The models each supported channel type offers by default (One API's
    `channelId2Models`), from `libs.providers`."""
    adaptors = Adaptors.build()
    return {
        int(kind): adaptors.for_type(kind).default_models()
        for kind in sorted(adaptors.supported_types)
    }


@functools.cache
def model_cards() -> tuple[ModelCard, ...]:
    """Every model the providers know, once each, owned by the first type that offers it."""
    cards: dict[str, ModelCard] = {}
    for kind, models in models_by_type().items():
        owner = channel_type(kind).name.lower()
        for model in models:
            cards.setdefault(
                model, ModelCard(id=model, created=MODEL_CARD_CREATED, owned_by=owner, root=model)
            )
    return tuple(cards.values())
