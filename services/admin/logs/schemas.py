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


DASHBOARD_DAYS: Final = 7
"""One API's dashboard: today (UTC) and the six days before."""
MAX_DASHBOARD_DAYS: Final = 90
"""The longest dashboard window (the aggregate keeps at least 366 days)."""
MAX_CHANNEL_STAT_SECONDS: Final = 90 * 86_400
"""The longest range `/api/log/channel_stat` sums: it reads the logs themselves."""
DEFAULT_CHANNEL_STAT_SECONDS: Final = 7 * 86_400
"""The range summed when no start is given."""

DashboardDays = Annotated[
    int,
    Field(
        ge=1,
        le=MAX_DASHBOARD_DAYS,
        description=f"how many UTC days, today included (1 to {MAX_DASHBOARD_DAYS})",
    ),
]


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


class ChannelStatQuery(BaseModel):
    """`GET /api/log/channel_stat`: a range of at most 90 days; 0 ends it now, or starts it
    seven days before its end."""

    start_timestamp: Annotated[
        int,
        Field(
            ge=0, le=MAX_TIMESTAMP, description="Unix seconds, inclusive; 0: 7 days before the end"
        ),
    ] = 0
    end_timestamp: Annotated[
        int, Field(ge=0, le=MAX_TIMESTAMP, description="Unix seconds, inclusive; 0: now")
    ] = 0


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


class ChannelStat(BaseModel):
    """The consume logs of one channel over a range (`channel` is `channel_id`; 0: none)."""

    channel: int
    request_count: int
    quota: int
    prompt_tokens: int
    completion_tokens: int
