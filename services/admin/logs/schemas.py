"""Wire shapes of `/api/log/*` and `/api/user/dashboard`, in One API's field names."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, BaseModel, Field

from services.admin.schemas import INT32_MAX, storable_text

MAX_TIMESTAMP: Final = 253_402_300_799
"""9999-12-31T23:59:59Z: any later "timestamp" is a mistake, and would overflow BIGINT soon."""
MAX_FILTER_CHARS: Final = 191
"""The longest value a filtered column holds (`model_name`)."""


FilterText = Annotated[str, Field(max_length=MAX_FILTER_CHARS), AfterValidator(storable_text)]
Timestamp = Annotated[
    int, Field(ge=0, le=MAX_TIMESTAMP, description="Unix seconds, inclusive; 0: unbounded")
]
LogTypeFilter = Annotated[
    int,
    Field(
        ge=0,
        le=INT32_MAX,
        description="1 top-up, 2 consume, 3 manage, 4 system, 5 test; 0: every type",
    ),
]
ChannelFilter = Annotated[int, Field(ge=0, le=INT32_MAX, description="channel id; 0: any")]


class SelfLogQuery(BaseModel):
    """`GET /api/log/self`: what a user may filter their own logs by."""

    type: LogTypeFilter = 0
    start_timestamp: Timestamp = 0
    end_timestamp: Timestamp = 0
    token_name: FilterText = ""
    model_name: FilterText = ""


class SelfStatQuery(SelfLogQuery):
    """`GET /api/log/self/stat`. One API sums consume logs whatever `type` says."""

    channel: ChannelFilter = 0


class LogQuery(SelfStatQuery):
    """`GET /api/log/` and `GET /api/log/stat`: every log, also by user and channel."""

    username: FilterText = ""


SearchKeyword = Annotated[
    FilterText,
    Field(description="a log type number, or the beginning of the content"),
]


class LogItem(BaseModel):
    """One row of `logs`, as One API serialises it (`channel` is `channel_id`)."""

    id: int
    """0 in a user's own logs, as One API answers: ids would tell the site's traffic."""
    user_id: int
    created_at: int
    type: int
    content: str
    username: str
    token_name: str
    model_name: str
    quota: int
    prompt_tokens: int
    completion_tokens: int
    channel: int
    request_id: str
    elapsed_time: int
    """Milliseconds."""
    is_stream: bool
    system_prompt_reset: bool
    token_id: int
    """Beyond One API, like the two counts below."""
    cached_tokens: int
    reasoning_tokens: int


class LogStat(BaseModel):
    quota: int
    """The quota of the consume logs that match the filters."""


class DailyUsage(BaseModel):
    """One (day, model) of `/api/user/dashboard`: One API sends these Go field names as is."""

    Day: str
    """UTC date, YYYY-MM-DD."""
    ModelName: str
    RequestCount: int
    Quota: int
    PromptTokens: int
    CompletionTokens: int
