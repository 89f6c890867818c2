"""Deleting old logs in small transactions: `DELETE /api/log/` and `LogRetentionDays`.

    retention = LogRetention(database, cache)
    ctx.spawn(retention.run(), name="log-retention")   # hourly, until cancelled

`LogRetentionDays` (beyond One API; 0, the default, keeps every log) deletes logs of every type
older than that many days. Deletion goes `BATCH_SIZE` rows per transaction with a pause between
batches, so that billing's log inserts and the admin's reads never wait long behind it, and a
table of millions of expired rows is drained without one enormous transaction.

Several admin replicas: each batch is "select up to N old ids, delete those ids", which is
idempotent, so replicas running at once only waste work; a shared cache (Redis) lets just one
of them run per hour.

The dashboard's aggregate, `log_daily_usage`, is kept longer than the logs: rows older than
`max(LogRetentionDays, DAILY_USAGE_MIN_DAYS)` days go. It holds about one row per user, model
and day, so a year of it is small next to the logs, and usage history outlives the detail. It
is pruned one day per transaction. `DELETE /api/log/` never touches it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Final

from libs.common.cache import Cache, CacheError
from libs.common.db import Database
from libs.common.options import OptionValues
from services.admin.logs import repository
from services.admin.options import repository as options_repository

logger = logging.getLogger(__name__)

BATCH_SIZE: Final = 1000
"""Logs deleted per transaction."""
BATCH_PAUSE_SECONDS: Final = 0.2
"""Between two batches of the retention task, so that other writers get their turn."""
INTERVAL_SECONDS: Final = 3600.0
DAILY_USAGE_MIN_DAYS: Final = 366
"""The aggregate is kept at least this long, whatever `LogRetentionDays` says."""
SECONDS_PER_DAY: Final = 86_400
_ELECTION_KEY: Final = "logs:retention"


async def delete_logs_before(
    database: Database, before: int, *, batch_size: int = BATCH_SIZE, pause: float = 0.0
) -> int:
    """Delete every log created before `before` (Unix seconds); returns how many this call
    deleted. Each batch is its own transaction on the logs database."""
    deleted = 0
    while True:
        async with database.log_session() as session:
            ids = await repository.log_ids_before(session, before, batch_size)
            deleted += await repository.delete_logs(session, ids)
        if len(ids) < batch_size:
            return deleted
        if pause:
            await asyncio.sleep(pause)


async def delete_daily_usage_before(database: Database, before_day: int) -> int:
    """Delete the aggregate rows of the days before `before_day`, one day per transaction."""
    deleted = 0
    while True:
        async with database.log_session() as session:
            day = await repository.oldest_usage_day(session)
            if day is None or day >= before_day:
                return deleted
            deleted += await repository.delete_usage_day(session, day)


@dataclass(frozen=True)
class RetentionOutcome:
    logs: int = 0
    daily_usage: int = 0


class LogRetention:
    """The hourly task applying `LogRetentionDays` (read from the options table each time)."""

    def __init__(
        self,
        database: Database,
        cache: Cache,
        *,
        interval: float = INTERVAL_SECONDS,
        batch_size: int = BATCH_SIZE,
        pause: float = BATCH_PAUSE_SECONDS,
    ) -> None:
        self._database = database
        self._cache = cache
        self._interval = interval
        self._batch_size = batch_size
        self._pause = pause

    async def run(self) -> None:
        """Apply the retention now and every `interval` seconds, until cancelled. A failure
        is logged and tried again next time: it never stops the admin."""
        while True:
            try:
                if await self._elected():
                    await self.run_once()
            except Exception:
                logger.exception("deleting expired logs failed; trying again in an hour")
            await asyncio.sleep(self._interval)

    async def run_once(self, now: int | None = None) -> RetentionOutcome:
        """Delete what `LogRetentionDays` says has expired at `now` (Unix seconds)."""
        now = int(time.time()) if now is None else now
        days = await self._retention_days()
        if days <= 0:
            return RetentionOutcome()
        logs = await delete_logs_before(
            self._database,
            now - days * SECONDS_PER_DAY,
            batch_size=self._batch_size,
            pause=self._pause,
        )
        today = now // SECONDS_PER_DAY
        usage = await delete_daily_usage_before(
            self._database, today - max(days, DAILY_USAGE_MIN_DAYS)
        )
        if logs or usage:
            logger.info(
                "log retention (%d days): deleted %d logs and %d daily usage rows",
                days,
                logs,
                usage,
            )
        return RetentionOutcome(logs=logs, daily_usage=usage)

    async def _retention_days(self) -> int:
        async with self._database.session() as session:
            options = OptionValues(await options_repository.load_all(session))
        return options.integer("LogRetentionDays")

    async def _elected(self) -> bool:
        """Whether this replica runs this round: the first to count a hit in the window."""
        try:
            return await self._cache.hit(_ELECTION_KEY, self._interval * 0.9) == 1
        except CacheError as exc:
            logger.warning("log retention runs unelected, the cache is unavailable: %s", exc)
            return True
