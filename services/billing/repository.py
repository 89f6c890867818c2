"""Billing's SQL: idempotency keys, atomic increments, balances read back, consume logs and
their daily sums.

Every write is an increment computed by the database (``SET x = x + :delta``), never a value
read and written back, so billing composes with any other writer (an admin's top-up). Nothing
here commits: the caller's unit of work does.

MySQL/MariaDB evaluate ``SET`` assignments left to right, each seeing the previous ones; the
token statement therefore assigns `status` before `remain_quota`, so that on every backend the
status test reads the balance as it was before this statement.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    not_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import Column

from libs.common.db.models import (
    Channel,
    Log,
    LogDailyUsage,
    LogType,
    Option,
    SettledRequest,
    Token,
    TokenStatus,
    User,
)
from libs.common.events import TokenBalance, UsageEvent, UserBalance

TOKENS: Final = cast(Table, Token.__table__)
USERS: Final = cast(Table, User.__table__)
CHANNELS: Final = cast(Table, Channel.__table__)
SETTLED: Final = cast(Table, SettledRequest.__table__)
LOGS: Final = cast(Table, Log.__table__)
DAILY_USAGE: Final = cast(Table, LogDailyUsage.__table__)
OPTIONS: Final = cast(Table, Option.__table__)

IN_CHUNK: Final = 500
"""Ids per ``IN (...)`` list: well under every backend's bound-parameter limit."""

_USERNAME_CHARS: Final = 64
_TOKEN_NAME_CHARS: Final = 128
_MODEL_NAME_CHARS: Final = 191
_CONTENT_CHARS: Final = 16_000
"""MySQL's TEXT holds 65,535 bytes: 16,000 characters of 4 bytes fit."""
SECONDS_PER_DAY: Final = 86_400
_DAILY_KEY: Final = ("user_id", "day", "model_name")
_DAILY_SUMS: Final = ("request_count", "quota", "prompt_tokens", "completion_tokens")


@dataclass(frozen=True, slots=True)
class TokenDelta:
    token_id: int
    quota: int
    accessed_time: int


@dataclass(frozen=True, slots=True)
class UserDelta:
    user_id: int
    quota: int
    requests: int


def _chunks(values: Sequence[Any], size: int = IN_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _postgres(session: AsyncSession) -> bool:
    """PostgreSQL takes whole arrays as one parameter: one statement per step whatever the
    batch size, prepared once (an ``IN`` list or multi-row ``VALUES`` of n parameters is a
    new statement, parsed and planned, for every n)."""
    return session.get_bind().dialect.name == "postgresql"


async def begin_batch(session: AsyncSession) -> None:
    """Per-transaction settings of a batch. On PostgreSQL: plan every statement for its
    actual parameters. A prepared statement otherwise switches to a generic plan after five
    runs, and the one chosen while `settled_requests` was small is a sequential scan that
    grows with the table (200 ms per batch at 30,000 rows)."""
    if _postgres(session):
        await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _member_of(column: Column[Any], values: Sequence[Any], array_type: Any) -> ColumnElement[bool]:
    """``column = ANY(:array)`` on PostgreSQL (with `array_type` the element type)."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(array_type)))


# --- idempotency keys --------------------------------------------------------------------------


async def settled_state(session: AsyncSession, request_ids: Collection[str]) -> dict[str, bool]:
    """The request ids among `request_ids` already charged, each with its `log_pending`."""
    found: dict[str, bool] = {}
    pg = _postgres(session)
    for chunk in _chunks(sorted(request_ids), 10 * IN_CHUNK if pg else IN_CHUNK):
        member = (
            _member_of(SETTLED.c.request_id, chunk, String)
            if pg
            else SETTLED.c.request_id.in_(chunk)
        )
        rows = await session.execute(
            select(SETTLED.c.request_id, SETTLED.c.log_pending).where(member)
        )
        for request_id, log_pending in rows:
            found[str(request_id)] = bool(log_pending)
    return found


async def insert_settled(
    session: AsyncSession, request_ids: Sequence[str], *, settled_at: int, log_pending: bool
) -> None:
    """Record `request_ids` as charged. A concurrent charge of one of them makes this raise
    IntegrityError (primary key), which rolls the whole charge back."""
    if not request_ids:
        return
    if _postgres(session):
        ids = bindparam("b_ids", list(request_ids), type_=ARRAY(String))
        await session.execute(
            insert(SETTLED).from_select(
                ["request_id", "settled_at", "log_pending"],
                select(
                    func.unnest(ids),
                    literal(settled_at, BigInteger),
                    literal(log_pending, Boolean),
                ),
            )
        )
        return
    await session.execute(
        insert(SETTLED),
        [
            {"request_id": request_id, "settled_at": settled_at, "log_pending": log_pending}
            for request_id in request_ids
        ],
    )


async def clear_log_pending(session: AsyncSession, request_ids: Sequence[str]) -> None:
    """Mark the logs of `request_ids` written. Being an UPDATE, it also locks their rows (the
    write lock on SQLite) until the transaction ends: two billers cannot repair one log."""
    for chunk in _chunks(sorted(request_ids)):
        await session.execute(
            update(SETTLED).where(SETTLED.c.request_id.in_(chunk)).values(log_pending=False)
        )


async def expired_settled_ids(session: AsyncSession, before: int, limit: int) -> list[str]:
    """Up to `limit` request ids settled before `before` whose log is not owed."""
    rows = await session.execute(
        select(SETTLED.c.request_id)
        .where(SETTLED.c.settled_at < before, not_(SETTLED.c.log_pending))
        .limit(limit)
    )
    return [str(request_id) for (request_id,) in rows]


async def delete_settled(session: AsyncSession, request_ids: Sequence[str]) -> int:
    deleted = 0
    for chunk in _chunks(request_ids):
        result = await session.execute(delete(SETTLED).where(SETTLED.c.request_id.in_(chunk)))
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


# --- increments --------------------------------------------------------------------------------


def _token_charge(quota: Any, accessed: Any) -> Any:
    limited = not_(TOKENS.c.unlimited_quota)
    return update(TOKENS).ordered_values(
        # First: MySQL would otherwise see remain_quota already lowered.
        (
            TOKENS.c.status,
            case(
                (
                    and_(
                        limited,
                        TOKENS.c.status == int(TokenStatus.ENABLED),
                        TOKENS.c.remain_quota - quota <= 0,
                    ),
                    literal(int(TokenStatus.EXHAUSTED), Integer),
                ),
                else_=TOKENS.c.status,
            ),
        ),
        (
            TOKENS.c.remain_quota,
            case((limited, TOKENS.c.remain_quota - quota), else_=TOKENS.c.remain_quota),
        ),
        (TOKENS.c.used_quota, TOKENS.c.used_quota + quota),
        (
            TOKENS.c.accessed_time,
            case((TOKENS.c.accessed_time < accessed, accessed), else_=TOKENS.c.accessed_time),
        ),
    )


def _user_charge(quota: Any, requests: Any) -> Any:
    return update(USERS).values(
        quota=USERS.c.quota - quota,
        used_quota=USERS.c.used_quota + quota,
        request_count=USERS.c.request_count + requests,
    )


def _channel_charge(quota: Any) -> Any:
    return update(CHANNELS).values(used_quota=CHANNELS.c.used_quota + quota)


def _deltas(**columns: tuple[list[int], Any]) -> Any:
    """PostgreSQL: the deltas as one derived table ``unnest(:a), unnest(:b), ...``."""
    return select(
        *(
            func.unnest(bindparam(f"b_{name}", values, type_=ARRAY(kind))).label(name)
            for name, (values, kind) in columns.items()
        )
    ).subquery("deltas")


async def charge_tokens(session: AsyncSession, deltas: Sequence[TokenDelta]) -> None:
    """Lower each limited token's remain_quota, raise used_quota, keep the latest access, and
    mark an enabled limited token exhausted when its balance reaches zero. In id order, so
    that two transactions touching the same rows lock them in the same order."""
    if not deltas:
        return
    ordered = sorted(deltas, key=lambda d: d.token_id)
    if _postgres(session):
        table = _deltas(
            id=([d.token_id for d in ordered], Integer),
            quota=([d.quota for d in ordered], BigInteger),
            accessed=([d.accessed_time for d in ordered], BigInteger),
        )
        await session.execute(
            _token_charge(table.c.quota, table.c.accessed).where(TOKENS.c.id == table.c.id)
        )
        return
    quota = bindparam("b_quota", type_=BigInteger)
    accessed = bindparam("b_accessed", type_=BigInteger)
    await session.execute(
        _token_charge(quota, accessed).where(TOKENS.c.id == bindparam("b_id", type_=Integer)),
        [{"b_id": d.token_id, "b_quota": d.quota, "b_accessed": d.accessed_time} for d in ordered],
    )


async def charge_users(session: AsyncSession, deltas: Sequence[UserDelta]) -> None:
    if not deltas:
        return
    ordered = sorted(deltas, key=lambda d: d.user_id)
    if _postgres(session):
        table = _deltas(
            id=([d.user_id for d in ordered], Integer),
            quota=([d.quota for d in ordered], BigInteger),
            requests=([d.requests for d in ordered], Integer),
        )
        await session.execute(
            _user_charge(table.c.quota, table.c.requests).where(USERS.c.id == table.c.id)
        )
        return
    await session.execute(
        _user_charge(
            bindparam("b_quota", type_=BigInteger), bindparam("b_requests", type_=Integer)
        ).where(USERS.c.id == bindparam("b_id", type_=Integer)),
        [{"b_id": d.user_id, "b_quota": d.quota, "b_requests": d.requests} for d in ordered],
    )


async def charge_channels(session: AsyncSession, deltas: dict[int, int]) -> None:
    if not deltas:
        return
    ordered = sorted(deltas.items())
    if _postgres(session):
        table = _deltas(
            id=([cid for cid, _ in ordered], Integer),
            quota=([quota for _, quota in ordered], BigInteger),
        )
        await session.execute(_channel_charge(table.c.quota).where(CHANNELS.c.id == table.c.id))
        return
    await session.execute(
        _channel_charge(bindparam("b_quota", type_=BigInteger)).where(
            CHANNELS.c.id == bindparam("b_id", type_=Integer)
        ),
        [{"b_id": cid, "b_quota": quota} for cid, quota in ordered],
    )


# --- balances ----------------------------------------------------------------------------------


async def token_balances(session: AsyncSession, token_ids: Collection[int]) -> list[TokenBalance]:
    balances: list[TokenBalance] = []
    pg = _postgres(session)
    for chunk in _chunks(sorted(token_ids), 10 * IN_CHUNK if pg else IN_CHUNK):
        member = _member_of(TOKENS.c.id, chunk, Integer) if pg else TOKENS.c.id.in_(chunk)
        rows = await session.execute(
            select(TOKENS.c.id, TOKENS.c.remain_quota, TOKENS.c.used_quota, TOKENS.c.status).where(
                member
            )
        )
        balances.extend(
            TokenBalance(
                id=int(row[0]), remain_quota=int(row[1]), used_quota=int(row[2]), status=int(row[3])
            )
            for row in rows
        )
    return balances


async def user_balances(
    session: AsyncSession, user_ids: Collection[int]
) -> list[tuple[UserBalance, str]]:
    """The users' balances with their email address (for quota reminders)."""
    balances: list[tuple[UserBalance, str]] = []
    pg = _postgres(session)
    for chunk in _chunks(sorted(user_ids), 10 * IN_CHUNK if pg else IN_CHUNK):
        member = _member_of(USERS.c.id, chunk, Integer) if pg else USERS.c.id.in_(chunk)
        rows = await session.execute(
            select(
                USERS.c.id,
                USERS.c.quota,
                USERS.c.used_quota,
                USERS.c.request_count,
                USERS.c.email,
            ).where(member)
        )
        balances.extend(
            (
                UserBalance(
                    id=int(row[0]),
                    quota=int(row[1]),
                    used_quota=int(row[2]),
                    request_count=int(row[3]),
                ),
                str(row[4] or ""),
            )
            for row in rows
        )
    return balances


# --- consume logs ------------------------------------------------------------------------------


def _ratios(event: UsageEvent) -> str:
    ratios: dict[str, object] = {
        "model_ratio": event.model_ratio,
        "completion_ratio": event.completion_ratio,
        "group_ratio": event.group_ratio,
        "group": event.group,
    }
    if event.origin_model and event.origin_model != event.model:
        ratios["origin_model"] = event.origin_model
    return orjson.dumps(ratios).decode()


def log_row(event: UsageEvent) -> dict[str, Any]:
    """The consume log (type 2) of `event`, in One API's columns plus this project's."""
    return {
        "user_id": event.user_id,
        "created_at": event.created_at,
        "type": int(LogType.CONSUME),
        "content": event.content[:_CONTENT_CHARS],
        "username": event.username[:_USERNAME_CHARS],
        "token_name": event.token_name[:_TOKEN_NAME_CHARS],
        "token_id": event.token_id,
        "model_name": event.model[:_MODEL_NAME_CHARS],
        "quota": event.quota,
        "prompt_tokens": event.prompt_tokens,
        "completion_tokens": event.completion_tokens,
        "cached_tokens": event.cached_tokens,
        "reasoning_tokens": event.reasoning_tokens,
        "channel_id": event.channel_id,
        "request_id": event.request_id,
        "elapsed_time": event.elapsed_ms,
        "is_stream": event.is_stream,
        "system_prompt_reset": event.system_prompt_reset,
        "ratios": _ratios(event),
    }


async def insert_logs(session: AsyncSession, events: Sequence[UsageEvent]) -> None:
    """Write the consume logs of `events` and add them to their daily sums, in `session`'s
    transaction: the dashboard's aggregate is written exactly when, and as often as, the logs
    it sums (once per request: the callers pass only requests not logged before)."""
    if not events:
        return
    rows = [log_row(event) for event in events]
    if _postgres(session):
        names = list(rows[0])
        arrays = [
            func.unnest(
                bindparam(f"b_{name}", [row[name] for row in rows], type_=ARRAY(LOGS.c[name].type))
            )
            for name in names
        ]
        await session.execute(insert(LOGS).from_select(names, select(*arrays)))
    else:
        await session.execute(insert(LOGS), rows)
    await _add_daily_usage(session, daily_usage_rows(rows))


def daily_usage_rows(log_rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consume log rows summed per (user, UTC day, model), in key order (so that concurrent
    transactions lock the aggregate's rows in the same order)."""
    sums: dict[tuple[int, int, str], list[int]] = {}
    for row in log_rows:
        key = (row["user_id"], row["created_at"] // SECONDS_PER_DAY, row["model_name"])
        total = sums.setdefault(key, [0, 0, 0, 0])
        total[0] += 1
        total[1] += row["quota"]
        total[2] += row["prompt_tokens"]
        total[3] += row["completion_tokens"]
    return [
        dict(zip(_DAILY_KEY + _DAILY_SUMS, (*key, *total), strict=True))
        for key, total in sorted(sums.items())
    ]


async def _add_daily_usage(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Add `rows` to `log_daily_usage`: one upsert whose increments the database computes
    (``INSERT ... ON CONFLICT DO UPDATE`` / ``ON DUPLICATE KEY UPDATE``)."""
    if not rows:
        return
    backend = session.get_bind().dialect.name
    if backend == "postgresql":
        arrays = [
            func.unnest(
                bindparam(
                    f"b_{name}",
                    [row[name] for row in rows],
                    type_=ARRAY(DAILY_USAGE.c[name].type),
                )
            )
            for name in _DAILY_KEY + _DAILY_SUMS
        ]
        pg_upsert = postgresql.insert(DAILY_USAGE).from_select(
            list(_DAILY_KEY + _DAILY_SUMS), select(*arrays)
        )
        await session.execute(
            pg_upsert.on_conflict_do_update(
                index_elements=list(_DAILY_KEY),
                set_={name: DAILY_USAGE.c[name] + pg_upsert.excluded[name] for name in _DAILY_SUMS},
            )
        )
    elif backend == "sqlite":
        sqlite_upsert = sqlite.insert(DAILY_USAGE)
        await session.execute(
            sqlite_upsert.on_conflict_do_update(
                index_elements=list(_DAILY_KEY),
                set_={
                    name: DAILY_USAGE.c[name] + sqlite_upsert.excluded[name] for name in _DAILY_SUMS
                },
            ),
            rows,
        )
    else:  # mysql, mariadb
        mysql_upsert = mysql.insert(DAILY_USAGE)
        await session.execute(
            mysql_upsert.on_duplicate_key_update(
                {name: DAILY_USAGE.c[name] + mysql_upsert.inserted[name] for name in _DAILY_SUMS}
            ),
            rows,
        )


async def logged_request_ids(session: AsyncSession, request_ids: Collection[str]) -> set[str]:
    """The request ids among `request_ids` that already have a consume log."""
    found: set[str] = set()
    wanted = set(request_ids)
    for chunk in _chunks(sorted(wanted)):
        rows = await session.execute(
            select(LOGS.c.request_id).where(
                LOGS.c.request_id.in_(chunk), LOGS.c.type == int(LogType.CONSUME)
            )
        )
        # Exact match in Python: MySQL compares this column case-insensitively.
        found.update(str(rid) for (rid,) in rows if rid in wanted)
    return found


# --- options -----------------------------------------------------------------------------------


async def load_options(session: AsyncSession) -> dict[str, str]:
    rows = await session.execute(select(OPTIONS.c.key, OPTIONS.c.value))
    return {str(key): str(value or "") for key, value in rows}
