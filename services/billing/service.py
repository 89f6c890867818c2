"""Charging a batch of usage events: what one transaction does, and who to remind.

    settlement = await settle(session, events, now=..., log_here=True, log_pending=False)
    # the caller's unit of work commits; then acks, publishes QuotaUpdated, sends reminders

Nothing here commits. `settle` runs inside the caller's transaction:

1. the batch's request ids already in `settled_requests` are set aside (charged before);
2. the others are inserted there first: a concurrent biller charging one of them makes the
   insert fail on the primary key, and the whole transaction rolls back (the caller retries
   and then finds them settled);
3. one atomic increment per token, user and channel (the batch aggregated);
4. the consume logs and their daily sums (the dashboard's aggregate), when they live in
   this database;
5. the new balances of every token and user the batch names, read back after the increments
   in the same transaction (so they are exactly the committed values).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events import UsageEvent
from services.billing import repository
from services.billing.repository import TokenDelta, UserDelta
from services.billing.schemas import Settlement, UserCharge


def unique_by_request(events: Iterable[UsageEvent]) -> list[UsageEvent]:
    """`events` without repeated request ids; the first occurrence wins."""
    seen: dict[str, UsageEvent] = {}
    for event in events:
        seen.setdefault(event.request_id, event)
    return list(seen.values())


def aggregate(
    events: Iterable[UsageEvent],
) -> tuple[list[TokenDelta], list[UserDelta], dict[int, int]]:
    """One delta per token, user and channel: summed quota, request counts, latest access."""
    tokens: dict[int, tuple[int, int]] = {}
    users: dict[int, tuple[int, int]] = {}
    channels: dict[int, int] = {}
    for event in events:
        quota, accessed = tokens.get(event.token_id, (0, 0))
        tokens[event.token_id] = (quota + event.quota, max(accessed, event.created_at))
        quota, requests = users.get(event.user_id, (0, 0))
        users[event.user_id] = (quota + event.quota, requests + 1)
        channels[event.channel_id] = channels.get(event.channel_id, 0) + event.quota
    return (
        [TokenDelta(tid, quota, accessed) for tid, (quota, accessed) in tokens.items()],
        [UserDelta(uid, quota, requests) for uid, (quota, requests) in users.items()],
        channels,
    )


async def settle(
    session: AsyncSession,
    events: Sequence[UsageEvent],
    *,
    now: int,
    log_here: bool,
    log_pending: bool,
) -> Settlement:
    """Charge the events of `events` not charged before, in `session`'s transaction.

    `events` must hold each request id once (`unique_by_request`). `log_here` writes their
    consume logs in this transaction; `log_pending` records that a log is owed elsewhere.
    """
    await repository.begin_batch(session)
    state = await repository.settled_state(session, [event.request_id for event in events])
    charged = [event for event in events if event.request_id not in state]
    await repository.insert_settled(
        session, [event.request_id for event in charged], settled_at=now, log_pending=log_pending
    )
    token_deltas, user_deltas, channel_deltas = aggregate(charged)
    await repository.charge_tokens(session, token_deltas)
    await repository.charge_users(session, user_deltas)
    await repository.charge_channels(session, channel_deltas)
    if log_here:
        await repository.insert_logs(session, charged)

    tokens = await repository.token_balances(session, {event.token_id for event in events})
    users = await repository.user_balances(session, {event.user_id for event in events})
    spent = {delta.user_id: delta.quota for delta in user_deltas}
    return Settlement(
        charged=charged,
        already_settled=state,
        tokens=tokens,
        users=[balance for balance, _ in users],
        user_charges=[
            UserCharge(
                user_id=balance.id,
                quota_before=balance.quota + spent[balance.id],
                quota_after=balance.quota,
                email=email,
            )
            for balance, email in users
            if balance.id in spent
        ],
    )


async def write_missing_logs(
    main: AsyncSession, logs: AsyncSession, events: Sequence[UsageEvent]
) -> set[str]:
    """Write the consume logs of `events` that `logs` does not hold yet, with their daily
    sums (only for those: a log repaired later is summed once, with it); returns their ids.

    For a logs database of its own, after the main commit. `main` clears `log_pending` first,
    which locks those rows until the caller commits `main` (after `logs`): a second biller
    repairing the same request waits, then finds the log written.
    """
    ids = [event.request_id for event in events]
    await repository.begin_batch(main)
    await repository.clear_log_pending(main, ids)
    present = await repository.logged_request_ids(logs, ids)
    missing = [event for event in events if event.request_id not in present]
    await repository.insert_logs(logs, missing)
    return {event.request_id for event in missing}


@dataclass(frozen=True, slots=True)
class Reminder:
    """A user whose quota crossed the reminder threshold (or ran out) in one batch."""

    user_id: int
    email: str
    quota: int
    exhausted: bool


def reminders(charges: Iterable[UserCharge], threshold: int) -> list[Reminder]:
    """One reminder per user whose quota went from >= `threshold` to below it, or from
    positive to none, across the charges given (one batch): One API's rule, per batch."""
    spans: dict[int, tuple[int, int, str]] = {}
    for charge in charges:
        first = spans.get(charge.user_id)
        before = first[0] if first is not None else charge.quota_before
        spans[charge.user_id] = (before, charge.quota_after, charge.email)
    found: list[Reminder] = []
    for user_id, (before, after, email) in spans.items():
        crossed = before >= threshold > after
        ran_out = before > 0 >= after
        if email and (crossed or ran_out):
            found.append(Reminder(user_id, email, after, exhausted=after <= 0))
    return found
