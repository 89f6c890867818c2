"""Wire shapes of `/api/channel`, `/api/group` and `/api/models`: One API's JSON fields.

One API sends `models` and `group` as comma lists, `model_mapping` and `config` as strings of
JSON; its web UI and scripts do, and so do these shapes. Beyond One API, a list of strings is
accepted for `models` and `group`, and a JSON object for `model_mapping` and `config`.

Every text is refused when it holds a NUL character or a lone surrogate (no database stores
them), and every length and number stays within its column, so bad input is answered in the
envelope and never reaches the database.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from libs.common.db.models import Channel, ChannelStatus
from services.admin.schemas import INT32_MAX, INT64_MAX, RowId, StorableText

INT64_MIN: Final = -(2**63)
MAX_TEXT_CHARS: Final = 16_000
"""TEXT columns hold 65,535 bytes on MySQL/MariaDB: 16,000 characters fit even at 4 bytes."""
MAX_KEY_CHARS: Final = 8_192
"""One key, even a cloud service account's JSON, fits; encrypted it still fits its column."""


Text = StorableText
"""A string every database can store."""


Name = Annotated[Text, Field(max_length=128)]
BaseUrl = Annotated[Text, Field(max_length=512)]
LongText = Annotated[Text, Field(max_length=MAX_TEXT_CHARS)]
KeyLines = Annotated[Text, Field(max_length=MAX_KEY_CHARS * 64)]
"""One key per line; each line is held to MAX_KEY_CHARS by the service."""
NameList = Annotated[
    LongText | list[Annotated[Text, Field(max_length=191)]],
    Field(description="a comma list (One API), or a list of strings"),
]
JsonObjectText = Annotated[
    LongText | dict[str, Any] | None,
    Field(description="a JSON object, as a string (One API) or as an object"),
]
ChannelId = RowId
Priority = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Weight = Annotated[int, Field(ge=0, le=INT32_MAX)]
ChannelTypeId = Annotated[int, Field(ge=0, le=INT32_MAX)]
Status = Annotated[int, Field(ge=ChannelStatus.ENABLED, le=ChannelStatus.AUTO_DISABLED)]


class ChannelCreate(BaseModel):
    """`POST /api/channel/`: one channel per non-empty line of `key`."""

    model_config = ConfigDict(extra="ignore")

    type: ChannelTypeId = 1
    key: KeyLines
    name: Name
    status: Status = ChannelStatus.ENABLED
    base_url: BaseUrl | None = ""
    other: LongText | None = ""
    models: NameList
    group: NameList = "default"
    model_mapping: JsonObjectText = None
    priority: Priority | None = 0
    weight: Weight | None = 0
    config: JsonObjectText = None
    system_prompt: LongText | None = None


class ChannelUpdate(BaseModel):
    """`PUT /api/channel/`: the fields sent change, the others stay.

    As in One API (and as its web UI relies on): an empty `key` keeps the stored key, and an
    empty `name`, `models`, `group`, `config` or `other`, or a zero `type` or `status`, keeps
    the stored value. The UI's enable/disable and inline priority send only `id` and that field.
    """

    model_config = ConfigDict(extra="ignore")

    id: ChannelId
    type: ChannelTypeId | None = None
    key: KeyLines | None = None
    name: Name | None = None
    status: Annotated[int, Field(ge=0, le=ChannelStatus.AUTO_DISABLED)] | None = None
    base_url: BaseUrl | None = None
    other: LongText | None = None
    models: NameList | None = None
    group: NameList | None = None
    model_mapping: JsonObjectText = None
    priority: Priority | None = None
    weight: Weight | None = None
    config: JsonObjectText = None
    system_prompt: LongText | None = None


SECRET_CONFIG_KEYS: Final = ("sk", "vertex_ai_adc")
"""Credentials kept in `config` (AWS secret key, a Vertex service account with its private key):
never sent back, like `key`; an update that leaves them empty keeps the stored ones."""


def config_without_secrets(config: str) -> str:
    """`config` with every secret field blanked; "" when it is not a JSON object (it could
    hold anything)."""
    try:
        fields = orjson.loads(config) if config.strip() else {}
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(fields, dict):
        return ""
    if not any(fields.get(key) for key in SECRET_CONFIG_KEYS):
        return config
    return orjson.dumps(
        {k: "" if k in SECRET_CONFIG_KEYS else v for k, v in fields.items()}
    ).decode()


class ChannelOut(BaseModel):
    """A channel as One API shows it. `key` is always empty: keys are never sent back, nor
    are the secrets of `config` (beyond One API, which shows them).

    An unset `model_mapping` or `system_prompt` is "" (One API's column default), never null:
    One API's edit form would turn a null mapping into the text "null" and send it back.
    """

    id: int
    type: int
    key: Literal[""] = ""
    status: int
    name: str
    weight: int
    created_time: int
    test_time: int
    response_time: int
    base_url: str
    other: str
    balance: float
    balance_updated_time: int
    models: str
    group: str
    used_quota: int
    model_mapping: str
    priority: int
    config: str
    system_prompt: str

    @classmethod
    def of(cls, row: Channel) -> ChannelOut:
        return cls(
            id=row.id,
            type=row.type,
            status=row.status,
            name=row.name,
            weight=row.weight or 0,
            created_time=row.created_time or 0,
            test_time=row.test_time or 0,
            response_time=row.response_time or 0,
            base_url=row.base_url or "",
            other=row.other or "",
            balance=row.balance or 0.0,
            balance_updated_time=row.balance_updated_time or 0,
            models=row.models or "",
            group=row.group or "",
            used_quota=row.used_quota or 0,
            model_mapping=row.model_mapping or "",
            priority=row.priority or 0,
            config=config_without_secrets(row.config or ""),
            system_prompt=row.system_prompt or "",
        )


class ChannelTestAnswer(BaseModel):
    """`GET /api/channel/test/{id}`: One API's shape, no envelope `data`; `time` in seconds."""

    success: bool
    message: str = ""
    time: float = 0.0
    model: str = ""


class BalanceAnswer(BaseModel):
    """`GET /api/channel/update_balance/{id}`: One API's shape; `balance` in USD."""

    success: bool
    message: str = ""
    balance: float = 0.0


class ModelCard(BaseModel):
    """A model as OpenAI's `/v1/models` lists it (One API's `OpenAIModels`)."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str
    root: str
    parent: None = None


class ModelCatalogue(BaseModel):
    """`GET /api/channel/models`: One API's `{"object": "list", "data": [...]}`, which is also
    an envelope (its web UI reads `data` only)."""

    success: bool = True
    message: str = ""
    object: Literal["list"] = "list"
    data: list[ModelCard] = Field(default_factory=list)
