"""Billing's pure rules: what is chargeable, aggregation, who gets a reminder."""

from __future__ import annotations

import pytest

from services.billing.schemas import UserCharge, invalid_reason
from services.billing.service import aggregate, reminders, unique_by_request
from tests.services.billing.support import usage


def test_a_sound_event_is_chargeable() -> None:
    assert invalid_reason(usage("r", token_id=1, user_id=1, channel_id=1, quota=0)) is None


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"quota": -1}, "quota is negative (-1)"),
        ({"token_id": 0}, "token_id is missing (got 0)"),
        ({"user_id": -3}, "user_id is missing (got -3)"),
        ({"channel_id": 0}, "channel_id is missing (got 0)"),
        ({"quota": 2**60}, f"quota {2**60} is out of range"),
    ],
)
def test_events_that_cannot_be_charged_say_why(fields: dict[str, int], reason: str) -> None:
    values = {"token_id": 1, "user_id": 1, "channel_id": 1, "quota": 1, **fields}
    assert invalid_reason(usage("r", **values)) == reason


def test_request_ids_must_fit_the_idempotency_key() -> None:
    base = {"token_id": 1, "user_id": 1, "channel_id": 1, "quota": 1}
    assert invalid_reason(usage("", **base)) == "request_id is empty"
    assert invalid_reason(usage("x" * 65, **base)) == "request_id is longer than 64 characters"


def test_a_batch_is_aggregated_per_account_with_the_first_copy_of_each_request() -> None:
    events = [
        usage("a", token_id=1, user_id=7, channel_id=3, quota=10, created_at=100),
        usage("b", token_id=1, user_id=7, channel_id=4, quota=5, created_at=90),
        usage("a", token_id=2, user_id=8, channel_id=3, quota=999, created_at=200),
        usage("c", token_id=2, user_id=7, channel_id=3, quota=1, created_at=50),
    ]
    unique = unique_by_request(events)
    assert [e.request_id for e in unique] == ["a", "b", "c"]
    tokens, users, channels = aggregate(unique)
    assert {(d.token_id, d.quota, d.accessed_time) for d in tokens} == {(1, 15, 100), (2, 1, 50)}
    assert {(d.user_id, d.quota, d.requests) for d in users} == {(7, 16, 3)}
    assert channels == {3: 11, 4: 5}


def test_one_reminder_per_user_and_crossing() -> None:
    charges = [
        UserCharge(1, 15_000, 12_000, "a@x"),  # stays above
        UserCharge(2, 11_000, 9_000, "b@x"),  # crosses the threshold
        UserCharge(3, 500, -20, "c@x"),  # runs out
        UserCharge(4, 11_000, 9_000, ""),  # no address: nobody to tell
        UserCharge(5, 9_000, 8_000, "e@x"),  # already below, still has some
    ]
    found = {(r.user_id, r.quota, r.exhausted) for r in reminders(charges, 10_000)}
    assert found == {(2, 9_000, False), (3, -20, True)}
    # Parts of one batch (split by a retry) still make one reminder.
    split = [UserCharge(2, 11_000, 10_500, "b@x"), UserCharge(2, 10_500, 9_000, "b@x")]
    assert [(r.user_id, r.quota) for r in reminders(split, 10_000)] == [(2, 9_000)]
