"""`/api/log/*`: One API's filters, pagination, sums, search and deletion, and who sees what."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TypeAlias

import httpx
import pytest
from sqlalchemy import select

from libs.common.db.models import Log, LogType, UserRole
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused
from tests.services.admin.harness import TestUser as Account

Params: TypeAlias = dict[str, str | int]

DAY = 86_400
T = 1_700_000_000
"""When the seeded logs start (Unix seconds)."""

ONE_API_FIELDS = {
    "id",
    "user_id",
    "created_at",
    "type",
    "content",
    "username",
    "token_name",
    "model_name",
    "quota",
    "prompt_tokens",
    "completion_tokens",
    "channel",
    "request_id",
    "elapsed_time",
    "is_stream",
    "system_prompt_reset",
}
OUR_FIELDS = {"token_id", "cached_tokens", "reasoning_tokens"}


@dataclass(frozen=True)
class Seeded:
    alice: Account
    bob: Account
    admin: Account


async def seed(admin: AdminHarness) -> Seeded:
    """Eight logs, r1 (oldest) to r8, of two users, every type, three channels and models."""
    alice = await admin.add_user("alice")
    bob = await admin.add_user("bob")
    carol = await admin.add_user("carol", role=UserRole.ADMIN)

    def consume(n: int, user: Account, model: str, token: str, channel: int, quota: int) -> Log:
        return Log(
            user_id=user.id,
            username=user.username,
            created_at=T + 10 * (n - 1),
            type=LogType.CONSUME,
            content="倍率：1.00 × 1.00 × 1.00",
            token_name=token,
            token_id=n,
            model_name=model,
            quota=quota,
            prompt_tokens=quota // 2,
            completion_tokens=quota // 4,
            cached_tokens=n,
            reasoning_tokens=2 * n,
            channel_id=channel,
            request_id=f"r{n}",
            elapsed_time=100 * n,
            is_stream=n % 2 == 0,
        )

    logs = [
        consume(1, alice, "gpt-4", "a-main", 1, 100),
        consume(2, alice, "gpt-3.5-turbo", "a-main", 2, 200),
        consume(3, alice, "gpt-4", "a-side", 1, 400),
        Log(
            user_id=alice.id,
            username="alice",
            created_at=T + 30,
            type=LogType.TOPUP,
            content="通过兑换码充值 $2.000000",
            quota=1000,
            request_id="r4",
        ),
        consume(5, bob, "gpt-4", "b-main", 2, 800),
        Log(
            user_id=bob.id,
            username="bob",
            created_at=T + 50,
            type=LogType.MANAGE,
            content="管理员将用户额度从 1 修改为 2",
            request_id="r6",
        ),
        Log(created_at=T + 60, type=LogType.SYSTEM, content="_通道已被禁用", request_id="r7"),
        Log(
            created_at=T + 70,
            type=LogType.TEST,
            content="通道测试成功",
            model_name="gpt-4",
            channel_id=3,
            request_id="r8",
        ),
    ]
    async with admin.database.log_session() as session:
        for log in logs:  # one by one: ids in age order
            session.add(log)
            await session.flush()
    return Seeded(alice, bob, carol)


async def request_ids(client: httpx.AsyncClient, url: str, **params: str | int) -> list[str]:
    data = assert_ok(await client.get(url, params=params))
    return [log["request_id"] for log in data]


# --- every log (admins) -----------------------------------------------------------------------


async def test_an_admin_lists_every_log_newest_first_in_one_apis_fields(
    admin: AdminHarness,
) -> None:
    users = await seed(admin)
    logs = assert_ok(await admin.client(users.admin).get("/api/log/"))

    assert [log["request_id"] for log in logs] == [f"r{n}" for n in range(8, 0, -1)]
    assert set(logs[0]) == ONE_API_FIELDS | OUR_FIELDS
    async with admin.database.log_session() as session:
        stored = (await session.scalars(select(Log).where(Log.request_id == "r5"))).one()
    assert logs[3] == {
        "id": stored.id,
        "user_id": users.bob.id,
        "created_at": T + 40,
        "type": 2,
        "content": "倍率：1.00 × 1.00 × 1.00",
        "username": "bob",
        "token_name": "b-main",
        "model_name": "gpt-4",
        "quota": 800,
        "prompt_tokens": 400,
        "completion_tokens": 200,
        "channel": 2,
        "request_id": "r5",
        "elapsed_time": 500,
        "is_stream": False,
        "system_prompt_reset": False,
        "token_id": 5,
        "cached_tokens": 5,
        "reasoning_tokens": 10,
    }


async def test_each_filter_of_the_log_list_filters(admin: AdminHarness) -> None:
    users = await seed(admin)
    client = admin.client(users.admin)
    cases: list[tuple[Params, list[int]]] = [
        ({"type": 2}, [5, 3, 2, 1]),
        ({"type": 1}, [4]),
        ({"type": 0}, [8, 7, 6, 5, 4, 3, 2, 1]),
        ({"username": "alice"}, [4, 3, 2, 1]),
        ({"token_name": "a-main"}, [2, 1]),
        ({"model_name": "gpt-4"}, [8, 5, 3, 1]),
        ({"channel": 2}, [5, 2]),
        ({"start_timestamp": T + 20}, [8, 7, 6, 5, 4, 3]),
        ({"end_timestamp": T + 20}, [3, 2, 1]),
        ({"start_timestamp": T + 10, "end_timestamp": T + 40, "type": 2, "channel": 2}, [5, 2]),
        ({"username": "alice", "model_name": "gpt-4", "token_name": "a-side"}, [3]),
        ({"username": "nobody"}, []),
    ]
    for params, expected in cases:
        found = await request_ids(client, "/api/log/", **params)
        assert found == [f"r{n}" for n in expected], params


async def test_the_log_list_pages_with_p_and_size(admin: AdminHarness) -> None:
    users = await seed(admin)
    client = admin.client(users.admin)
    pages = [await request_ids(client, "/api/log/", p=p, size=3) for p in range(4)]
    assert pages == [["r8", "r7", "r6"], ["r5", "r4", "r3"], ["r2", "r1"], []]
    # One API's page size is 10, and a negative page is the first.
    assert len(await request_ids(client, "/api/log/", p=-1)) == 8
    assert await request_ids(client, "/api/log/", p=10**6, size=100) == []


async def test_the_stat_sums_the_quota_of_matching_consume_logs(admin: AdminHarness) -> None:
    users = await seed(admin)
    client = admin.client(users.admin)
    cases: list[tuple[Params, int]] = [
        ({}, 1500),  # the top-up's 1000 is not consumption
        ({"type": 1}, 1500),  # One API sums consume logs whatever the type says
        ({"username": "alice"}, 700),
        ({"token_name": "a-main"}, 300),
        ({"model_name": "gpt-4"}, 1300),
        ({"channel": 2}, 1000),
        ({"start_timestamp": T + 10, "end_timestamp": T + 20}, 600),
        ({"username": "bob", "channel": 1}, 0),
    ]
    for params, quota in cases:
        assert assert_ok(await client.get("/api/log/stat", params=params)) == {"quota": quota}


async def test_search_matches_the_type_or_the_beginning_of_the_content(
    admin: AdminHarness,
) -> None:
    users = await seed(admin)
    client = admin.client(users.admin)
    assert await request_ids(client, "/api/log/search", keyword="2") == ["r5", "r3", "r2", "r1"]
    assert await request_ids(client, "/api/log/search", keyword="管理员") == ["r6"]
    assert await request_ids(client, "/api/log/search", keyword="通道") == ["r8"]
    # LIKE's wildcards are plain characters here.
    assert await request_ids(client, "/api/log/search", keyword="_") == ["r7"]
    assert await request_ids(client, "/api/log/search", keyword="%") == []
    assert len(await request_ids(client, "/api/log/search")) == 8


async def test_deleting_old_logs_answers_the_count_and_keeps_the_newer(
    admin: AdminHarness,
) -> None:
    users = await seed(admin)
    client = admin.client(users.admin)
    response = await client.delete("/api/log/", params={"target_timestamp": T + 35})
    assert assert_ok(response) == 4
    assert await request_ids(client, "/api/log/") == ["r8", "r7", "r6", "r5"]
    response = await client.delete("/api/log/", params={"target_timestamp": T + 35})
    assert assert_ok(response) == 0
    assert_refused(await client.delete("/api/log/"), message="target timestamp is required")


def channel_row(channel: int, requests: int, quota: int) -> dict[str, int]:
    """A row of `/api/log/channel_stat` for the seeded logs (prompt = quota/2, completion
    = quota/4 for each)."""
    return {
        "channel": channel,
        "request_count": requests,
        "quota": quota,
        "prompt_tokens": quota // 2,
        "completion_tokens": quota // 4,
    }


async def test_the_channel_stat_sums_consume_logs_per_channel_in_the_range(
    admin: AdminHarness,
) -> None:
    users = await seed(admin)
    client = admin.client(users.admin)
    url = "/api/log/channel_stat"
    cases: list[tuple[Params, list[dict[str, int]]]] = [
        # The test log of channel 3 and the top-up are not consumption; largest quota first.
        (
            {"start_timestamp": T, "end_timestamp": T + 70},
            [channel_row(2, 2, 1000), channel_row(1, 2, 500)],
        ),
        (
            {"start_timestamp": T + 10, "end_timestamp": T + 20},
            [channel_row(1, 1, 400), channel_row(2, 1, 200)],
        ),
        ({"start_timestamp": T, "end_timestamp": T}, [channel_row(1, 1, 100)]),  # inclusive
        ({"start_timestamp": T + 41, "end_timestamp": T + 100}, []),
        # No start: the seven days before the end.
        ({"end_timestamp": T + 25}, [channel_row(1, 2, 500), channel_row(2, 1, 200)]),
    ]
    for params, expected in cases:
        assert assert_ok(await client.get(url, params=params)) == expected, params
    # The root gets the same answer as an admin.
    everything = {"start_timestamp": T, "end_timestamp": T + 70}
    root_answer = assert_ok(await admin.client(admin.root).get(url, params=everything))
    assert root_answer == [channel_row(2, 2, 1000), channel_row(1, 2, 500)]


async def test_the_channel_stat_defaults_to_the_last_seven_days(admin: AdminHarness) -> None:
    now = int(time.time())
    async with admin.database.log_session() as session:
        for created_at, channel, quota in [
            (now - 60, 9, 30),
            (now - 6 * DAY, 9, 12),
            (now - 6 * DAY, 4, 8),
            (now - 8 * DAY, 4, 1000),  # before the default window
        ]:
            session.add(
                Log(
                    created_at=created_at,
                    type=LogType.CONSUME,
                    channel_id=channel,
                    quota=quota,
                    prompt_tokens=2 * quota,
                    completion_tokens=quota,
                )
            )
    answer = assert_ok(await admin.client(admin.root).get("/api/log/channel_stat"))
    assert answer == [
        {
            "channel": 9,
            "request_count": 2,
            "quota": 42,
            "prompt_tokens": 84,
            "completion_tokens": 42,
        },
        {"channel": 4, "request_count": 1, "quota": 8, "prompt_tokens": 16, "completion_tokens": 8},
    ]


async def test_the_channel_stat_refuses_ranges_beyond_ninety_days(admin: AdminHarness) -> None:
    root = admin.client(admin.root)
    url = "/api/log/channel_stat"
    longest = {"start_timestamp": T, "end_timestamp": T + 90 * DAY - 1}
    assert assert_ok(await root.get(url, params=longest)) == []
    too_long = {"start_timestamp": T, "end_timestamp": T + 90 * DAY}
    assert_refused(await root.get(url, params=too_long), message="时间范围不能超过 90 天")
    # A start of 0 with an end is the seven days before it, not "since ever".
    assert assert_ok(await root.get(url, params={"end_timestamp": T})) == []


# --- the caller's own logs --------------------------------------------------------------------


async def test_a_user_sees_only_their_own_logs_without_their_ids(admin: AdminHarness) -> None:
    users = await seed(admin)
    alice = admin.client(users.alice)
    logs = assert_ok(await alice.get("/api/log/self"))
    assert [log["request_id"] for log in logs] == ["r4", "r3", "r2", "r1"]
    assert {log["user_id"] for log in logs} == {users.alice.id}
    assert {log["id"] for log in logs} == {0}  # One API omits the id of a user's own logs
    assert set(logs[0]) == ONE_API_FIELDS | OUR_FIELDS
    assert logs[1]["channel"] == 1

    cases: list[tuple[Params, list[int]]] = [
        ({"type": 2}, [3, 2, 1]),
        ({"token_name": "a-main"}, [2, 1]),
        ({"model_name": "gpt-4"}, [3, 1]),
        ({"start_timestamp": T + 10, "end_timestamp": T + 20}, [3, 2]),
        ({"username": "bob"}, [4, 3, 2, 1]),  # not a filter here: still only hers
        ({"token_name": "b-main"}, []),
    ]
    for params, expected in cases:
        found = await request_ids(alice, "/api/log/self", **params)
        assert found == [f"r{n}" for n in expected], params
    assert await request_ids(alice, "/api/log/self", p=1, size=3) == ["r1"]

    bob = admin.client(users.bob)
    assert await request_ids(bob, "/api/log/self") == ["r6", "r5"]
    # The path One API's web UI asks for.
    assert await request_ids(bob, "/api/log/self/", p=0, type=0) == ["r6", "r5"]


async def test_a_users_search_and_stat_cover_only_their_own_logs(admin: AdminHarness) -> None:
    users = await seed(admin)
    alice = admin.client(users.alice)
    assert await request_ids(alice, "/api/log/self/search", keyword="2") == ["r3", "r2", "r1"]
    assert await request_ids(alice, "/api/log/self/search") == ["r4", "r3", "r2", "r1"]
    assert await request_ids(alice, "/api/log/self/search", keyword="管理员") == []
    stat = "/api/log/self/stat"
    assert assert_ok(await alice.get(stat)) == {"quota": 700}
    assert assert_ok(await alice.get(stat, params={"model_name": "gpt-4"})) == {"quota": 500}
    assert assert_ok(await alice.get(stat, params={"channel": 2})) == {"quota": 200}
    assert assert_ok(await alice.get(stat, params={"username": "bob"})) == {"quota": 700}
    assert assert_ok(await admin.client(users.bob).get(stat)) == {"quota": 800}


# --- permissions and validation ---------------------------------------------------------------

ADMIN_ROUTES = [
    ("GET", "/api/log/"),
    ("GET", "/api/log/search"),
    ("GET", "/api/log/stat"),
    ("DELETE", "/api/log/?target_timestamp=1"),
    ("GET", "/api/log/channel_stat"),
]
USER_ROUTES = [
    ("GET", "/api/log/self"),
    ("GET", "/api/log/self/search"),
    ("GET", "/api/log/self/stat"),
    ("GET", "/api/user/dashboard"),
]


async def test_a_common_user_is_refused_every_admin_route(admin: AdminHarness) -> None:
    users = await seed(admin)
    alice = admin.client(users.alice)
    for method, url in ADMIN_ROUTES:
        assert_refused(await alice.request(method, url), message="权限不足")
    async with admin.database.log_session() as session:
        assert len((await session.scalars(select(Log.id))).all()) == 8  # nothing was deleted


async def test_a_guest_gets_401_everywhere(admin: AdminHarness) -> None:
    guest = admin.client()
    for method, url in ADMIN_ROUTES + USER_ROUTES:
        assert_refused(await guest.request(method, url), status_code=401)


@pytest.mark.parametrize(
    ("url", "params", "message"),
    [
        ("/api/log/", {"start_timestamp": "yesterday"}, "start_timestamp"),
        ("/api/log/", {"end_timestamp": -1}, "end_timestamp"),
        ("/api/log/", {"end_timestamp": 10**20}, "end_timestamp"),
        ("/api/log/", {"start_timestamp": T + 1, "end_timestamp": T}, "起始时间不能晚于结束时间"),
        ("/api/log/", {"type": "consume"}, "type"),
        ("/api/log/", {"channel": "x"}, "channel"),
        ("/api/log/", {"username": "a\x00b"}, "username"),
        ("/api/log/stat", {"start_timestamp": "1.5"}, "start_timestamp"),
        ("/api/log/stat", {"start_timestamp": T + 1, "end_timestamp": T}, "起始时间"),
        ("/api/log/search", {"keyword": "x" * 192}, "keyword"),
        ("/api/log/self", {"end_timestamp": "tomorrow"}, "end_timestamp"),
        ("/api/log/self", {"start_timestamp": T + 1, "end_timestamp": T}, "起始时间"),
        ("/api/log/self/stat", {"channel": -2}, "channel"),
        ("/api/log/self/search", {"keyword": "\x00"}, "keyword"),
        ("/api/log/channel_stat", {"start_timestamp": "today"}, "start_timestamp"),
        ("/api/log/channel_stat", {"end_timestamp": -1}, "end_timestamp"),
        ("/api/log/channel_stat", {"start_timestamp": T + 1, "end_timestamp": T}, "起始时间"),
        ("/api/log/channel_stat", {"start_timestamp": 1, "end_timestamp": T}, "90 天"),
        ("/api/user/dashboard", {"days": 0}, "days"),
        ("/api/user/dashboard", {"days": 91}, "days"),
        ("/api/user/dashboard", {"days": "week"}, "days"),
    ],
)
async def test_bad_filters_are_refused_in_the_envelope(
    admin: AdminHarness, url: str, params: Params, message: str
) -> None:
    assert_refused(await admin.client(admin.root).get(url, params=params), message=message)


async def test_a_bad_deletion_timestamp_is_refused(admin: AdminHarness) -> None:
    root = admin.client(admin.root)
    for value in ("soon", "-1", "0"):
        response = await root.delete("/api/log/", params={"target_timestamp": value})
        assert_refused(response, message="target_timestamp" if value != "0" else "required")
