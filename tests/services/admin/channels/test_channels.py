"""`/api/channel`: One API's routes, abilities rebuilt with every write, keys never sent back."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from libs.common.db.models import Channel, ChannelStatus, Option, UserRole
from tests.services.admin.channels.support import (
    abilities,
    announced,
    channel_body,
    channel_row,
)
from tests.services.admin.harness import AdminHarness, assert_ok, assert_refused

ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/channel/", None),
    ("GET", "/api/channel/search?keyword=a", None),
    ("GET", "/api/channel/models", None),
    ("GET", "/api/channel/1", None),
    ("GET", "/api/channel/test", None),
    ("GET", "/api/channel/test/1", None),
    ("GET", "/api/channel/update_balance", None),
    ("GET", "/api/channel/update_balance/1", None),
    ("POST", "/api/channel/", channel_body()),
    ("PUT", "/api/channel/", {"id": 1, "status": 2}),
    ("DELETE", "/api/channel/disabled", None),
    ("DELETE", "/api/channel/1", None),
    ("GET", "/api/group/", None),
]


async def create(admin: AdminHarness, **fields: Any) -> list[dict[str, Any]]:
    created: list[dict[str, Any]] = assert_ok(
        await admin.client(admin.root).post("/api/channel/", json=channel_body(**fields))
    )
    return created


async def test_every_channel_route_is_for_admins_only(admin: AdminHarness) -> None:
    [channel] = await create(admin)
    alice = await admin.add_user("alice")
    for method, path, body in ROUTES:
        path = path.replace("/1", f"/{channel['id']}")
        guest = await admin.client().request(method, path, json=body)
        assert_refused(guest, status_code=401)
        common = await admin.client(alice).request(method, path, json=body)
        assert_refused(common, message="权限不足")
    # nothing the refused calls asked for happened
    row = await channel_row(admin.database, channel["id"])
    assert row is not None
    assert row.status == ChannelStatus.ENABLED
    # an admin (not only root) manages channels
    bob = await admin.add_user("bob", role=UserRole.ADMIN)
    assert len(assert_ok(await admin.client(bob).get("/api/channel/"))) == 1


async def test_a_channel_is_created_with_its_abilities_and_announced(admin: AdminHarness) -> None:
    [channel] = await create(
        admin,
        models="gpt-4o-mini, gpt-4o,gpt-4o-mini",
        group="default,vip",
        priority=5,
        weight=3,
        model_mapping='{"gpt-4o": "gpt-4o-2024-08-06"}',
        config={"region": "us-east-1"},
        system_prompt="be brief",
    )
    assert channel["name"] == "primary"
    assert channel["type"] == 1
    assert channel["status"] == ChannelStatus.ENABLED
    assert channel["models"] == "gpt-4o-mini,gpt-4o"
    assert channel["group"] == "default,vip"
    assert channel["model_mapping"] == '{"gpt-4o": "gpt-4o-2024-08-06"}'
    assert channel["config"] == '{"region":"us-east-1"}'
    assert (channel["priority"], channel["weight"]) == (5, 3)
    assert channel["created_time"] > 0
    cid = channel["id"]
    assert await abilities(admin.database) == {
        ("default", "gpt-4o-mini", cid, True, 5),
        ("default", "gpt-4o", cid, True, 5),
        ("vip", "gpt-4o-mini", cid, True, 5),
        ("vip", "gpt-4o", cid, True, 5),
    }
    await announced(admin, [cid])


async def test_a_multi_line_key_makes_one_channel_per_key(admin: AdminHarness) -> None:
    created = await create(admin, key="sk-one\r\n\n  sk-two  \nsk-three\n", name="batch")
    assert [channel["name"] for channel in created] == ["batch"] * 3
    ids = [channel["id"] for channel in created]
    async with admin.database.session() as session:
        rows = (await session.execute(select(Channel).order_by(Channel.id))).scalars().all()
    assert [row.key for row in rows] == ["sk-one", "sk-two", "sk-three"]
    assert [row.id for row in rows] == ids
    assert await abilities(admin.database) == {
        ("default", model, cid, True, 0) for cid in ids for model in ("gpt-4o-mini", "gpt-4o")
    }
    await announced(admin, ids)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": 999}, "未知的渠道类型"),
        ({"type": 0}, "未知的渠道类型"),
        ({"key": " \n \n"}, "渠道密钥"),
        ({"name": "  "}, "渠道名称"),
        ({"models": " , "}, "至少选择一个模型"),
        ({"model_mapping": "{not json"}, "模型映射"),
        ({"model_mapping": '["a"]'}, "模型映射"),
        ({"model_mapping": '{"a": 1}'}, "模型映射"),
        ({"config": "[1, 2]"}, "config"),
        ({"config": "nope"}, "config"),
        ({"config": {"too_big": 2**70}}, "config"),
        ({"base_url": "ftp://example.com"}, "Base URL"),
        ({"base_url": "http://[::1"}, "Base URL"),
        ({"base_url": "https://example.com:99999"}, "Base URL"),
        ({"name": "x" * 129}, "name"),
        ({"name": "nul\x00byte"}, "NUL"),
        ({"priority": 2**63}, "priority"),
        ({"weight": -1}, "weight"),
        ({"status": 7}, "status"),
        ({"models": "m" * 192}, "模型名称过长"),
        ({"group": "g" * 65}, "分组名称过长"),
        ({"key": "k" * 9000}, "密钥过长"),
    ],
)
async def test_invalid_channels_are_refused_in_the_envelope_and_nothing_is_written(
    admin: AdminHarness, fields: dict[str, Any], message: str
) -> None:
    response = await admin.client(admin.root).post("/api/channel/", json=channel_body(**fields))
    assert_refused(response, message=message)
    async with admin.database.session() as session:
        assert (await session.execute(select(Channel))).first() is None
    assert await abilities(admin.database) == set()


async def test_a_name_differing_only_in_case_on_mysql_is_refused_not_a_server_error(
    admin: AdminHarness,
) -> None:
    # MySQL/MariaDB compare ability keys case-insensitively; elsewhere both are kept.
    response = await admin.client(admin.root).post(
        "/api/channel/", json=channel_body(models="GPT-4,gpt-4")
    )
    if admin.database.engine.dialect.name == "mysql":
        assert_refused(response, message="重复")
        async with admin.database.session() as session:
            assert (await session.execute(select(Channel))).first() is None
    else:
        [channel] = assert_ok(response)
        assert {model for _, model, *_ in await abilities(admin.database, channel["id"])} == {
            "GPT-4",
            "gpt-4",
        }


async def test_the_list_is_newest_first_and_paged(admin: AdminHarness) -> None:
    created = await create(admin, key="\n".join(f"k{i}" for i in range(12)))
    ids = [channel["id"] for channel in created]
    client = admin.client(admin.root)
    first = assert_ok(await client.get("/api/channel/", params={"p": 0}))
    second = assert_ok(await client.get("/api/channel/", params={"p": 1}))
    assert [c["id"] for c in first] == sorted(ids, reverse=True)[:10]
    assert [c["id"] for c in second] == sorted(ids, reverse=True)[10:]
    assert assert_ok(await client.get("/api/channel/", params={"p": 2})) == []
    assert len(assert_ok(await client.get("/api/channel/", params={"p": 0, "size": 5}))) == 5


async def test_search_matches_an_id_or_the_start_of_a_name_never_a_key(
    admin: AdminHarness,
) -> None:
    [alpha] = await create(admin, name="alpha-east", key="sk-findme")
    [beta] = await create(admin, name="beta_100%", key="sk-other")
    client = admin.client(admin.root)

    async def found(keyword: str) -> list[int]:
        data = assert_ok(await client.get("/api/channel/search", params={"keyword": keyword}))
        return [channel["id"] for channel in data]

    assert await found("alpha") == [alpha["id"]]
    assert await found(str(beta["id"])) == [beta["id"]]
    assert await found("east") == []  # a prefix, as in One API
    assert await found("sk-findme") == []
    assert await found("%") == []  # wildcards are literal
    assert await found("beta_100%") == [beta["id"]]
    assert await found("") == [beta["id"], alpha["id"]]


async def test_get_answers_the_channel_or_not_found(admin: AdminHarness) -> None:
    [channel] = await create(admin, other="2024-02-01")
    client = admin.client(admin.root)
    got = assert_ok(await client.get(f"/api/channel/{channel['id']}"))
    assert got == channel
    assert got["other"] == "2024-02-01"
    assert set(got) >= {
        "id", "type", "key", "status", "name", "weight", "created_time", "test_time",
        "response_time", "base_url", "other", "balance", "balance_updated_time", "models",
        "group", "used_quota", "model_mapping", "priority", "config", "system_prompt",
    }  # fmt: skip
    assert_refused(await client.get(f"/api/channel/{channel['id'] + 100}"), message="不存在")
    assert_refused(await client.get("/api/channel/99999999999"), message="无效的参数")


async def test_keys_are_never_sent_back(admin: AdminHarness) -> None:
    secret_key = "sk-never-shown-7f3a9c"
    client = admin.client(admin.root)
    created = await client.post("/api/channel/", json=channel_body(key=secret_key, name="k"))
    [channel] = assert_ok(created)
    cid = channel["id"]
    responses = [
        created,
        await client.get("/api/channel/"),
        await client.get(f"/api/channel/{cid}"),
        await client.get("/api/channel/search", params={"keyword": "k"}),
        await client.get("/api/channel/search", params={"keyword": str(cid)}),
        await client.put("/api/channel/", json={"id": cid, "priority": 3}),
        await client.put("/api/channel/", json={"id": cid, "key": secret_key + "-new"}),
    ]
    for response in responses:
        assert assert_ok(response)
        assert "never-shown" not in response.text
    assert channel["key"] == ""


async def test_config_secrets_are_never_sent_back_and_an_empty_one_keeps_the_stored(
    admin: AdminHarness,
) -> None:
    client = admin.client(admin.root)
    config = {"region": "us-east-1", "ak": "AKIA-visible", "sk": "aws-secret-9d2e"}
    [channel] = await create(admin, type=33, config=json.dumps(config))
    cid = channel["id"]

    async def stored_config() -> dict[str, Any]:
        async with admin.database.session() as session:
            row = await session.get(Channel, cid)
            assert row is not None
            loaded: dict[str, Any] = json.loads(row.config)
            return loaded

    for response in [
        await client.get("/api/channel/"),
        await client.get(f"/api/channel/{cid}"),
        await client.get("/api/channel/search", params={"keyword": str(cid)}),
    ]:
        assert "aws-secret" not in response.text
    shown = json.loads(assert_ok(await client.get(f"/api/channel/{cid}"))["config"])
    assert shown == {"region": "us-east-1", "ak": "AKIA-visible", "sk": ""}

    # A form sends back what it was shown: the secret stays, the rest changes.
    edited = {**shown, "region": "eu-west-1"}
    updated = assert_ok(
        await client.put("/api/channel/", json={"id": cid, "config": json.dumps(edited)})
    )
    assert "aws-secret" not in json.dumps(updated)
    assert await stored_config() == {**config, "region": "eu-west-1"}

    replaced = {**edited, "sk": "aws-secret-rotated"}
    assert_ok(await client.put("/api/channel/", json={"id": cid, "config": json.dumps(replaced)}))
    assert (await stored_config())["sk"] == "aws-secret-rotated"


async def test_an_update_changes_what_is_sent_and_rebuilds_the_abilities(
    admin: AdminHarness,
) -> None:
    [channel] = await create(admin, group="default,vip", priority=1)
    cid = channel["id"]
    client = admin.client(admin.root)
    # One API's edit form: every field, the key left empty
    form = {**channel, "key": "", "models": "claude-3-5-haiku", "group": "vip", "priority": 7}
    updated = assert_ok(await client.put("/api/channel/", json=form))
    assert updated["models"] == "claude-3-5-haiku"
    assert await abilities(admin.database) == {("vip", "claude-3-5-haiku", cid, True, 7)}
    row = await channel_row(admin.database, cid)
    assert row is not None
    assert row.key == "sk-upstream-key-0001"  # an empty key keeps the stored one
    await announced(admin, [cid])

    # the channel list's inline priority and weight send only the id and the field
    assert_ok(await client.put("/api/channel/", json={"id": cid, "priority": -2}))
    assert_ok(await client.put("/api/channel/", json={"id": cid, "weight": 9}))
    row = await channel_row(admin.database, cid)
    assert row is not None
    assert (row.priority, row.weight, row.models, row.group) == (-2, 9, "claude-3-5-haiku", "vip")
    assert await abilities(admin.database) == {("vip", "claude-3-5-haiku", cid, True, -2)}

    assert_ok(await client.put("/api/channel/", json={"id": cid, "key": "sk-rotated"}))
    row = await channel_row(admin.database, cid)
    assert row is not None
    assert row.key == "sk-rotated"
    assert_refused(
        await client.put("/api/channel/", json={"id": cid, "key": "a\nb"}), message="一个密钥"
    )
    assert_refused(await client.put("/api/channel/", json={"id": cid + 1, "priority": 1}))
    assert_refused(
        await client.put("/api/channel/", json={"id": cid, "model_mapping": "[]"}),
        message="模型映射",
    )
    # a mapping is set, then cleared with what One API's form sends for none
    mapping = '{"claude-3-5-haiku": "claude-3-5-haiku-20241022"}'
    assert_ok(await client.put("/api/channel/", json={"id": cid, "model_mapping": mapping}))
    assert assert_ok(await client.get(f"/api/channel/{cid}"))["model_mapping"] == mapping
    for cleared in ("", "null"):
        assert_ok(await client.put("/api/channel/", json={"id": cid, "model_mapping": mapping}))
        assert_ok(await client.put("/api/channel/", json={"id": cid, "model_mapping": cleared}))
        assert assert_ok(await client.get(f"/api/channel/{cid}"))["model_mapping"] == ""


@pytest.mark.parametrize("status", [ChannelStatus.MANUALLY_DISABLED, ChannelStatus.AUTO_DISABLED])
async def test_a_status_change_switches_the_abilities(admin: AdminHarness, status: int) -> None:
    [channel] = await create(admin, priority=2)
    cid = channel["id"]
    client = admin.client(admin.root)
    await announced(admin, [cid])
    admin.config_changes.clear()
    assert_ok(await client.put("/api/channel/", json={"id": cid, "status": status}))
    assert await abilities(admin.database) == {
        ("default", "gpt-4o-mini", cid, False, 2),
        ("default", "gpt-4o", cid, False, 2),
    }
    await announced(admin, [cid])
    assert_ok(await client.put("/api/channel/", json={"id": cid, "status": 1}))
    assert {enabled for *_, enabled, _ in await abilities(admin.database)} == {True}
    # a disabled channel is created with disabled abilities
    [off] = await create(admin, status=ChannelStatus.MANUALLY_DISABLED)
    assert {enabled for *_, enabled, _ in await abilities(admin.database, off["id"])} == {False}


async def test_delete_removes_the_channel_and_its_abilities(admin: AdminHarness) -> None:
    [kept] = await create(admin, name="kept")
    [gone] = await create(admin, name="gone")
    client = admin.client(admin.root)
    await announced(admin, [gone["id"]])
    admin.config_changes.clear()
    assert_ok(await client.delete(f"/api/channel/{gone['id']}"))
    assert await channel_row(admin.database, gone["id"]) is None
    assert {cid for _, _, cid, *_ in await abilities(admin.database)} == {kept["id"]}
    await announced(admin, [gone["id"]])
    assert_refused(await client.delete(f"/api/channel/{gone['id']}"), message="不存在")


async def test_delete_disabled_removes_manually_and_automatically_disabled_channels(
    admin: AdminHarness,
) -> None:
    [enabled] = await create(admin, name="on")
    [manual] = await create(admin, name="manual", status=ChannelStatus.MANUALLY_DISABLED)
    [auto] = await create(admin, name="auto", status=ChannelStatus.AUTO_DISABLED)
    client = admin.client(admin.root)
    assert assert_ok(await client.delete("/api/channel/disabled")) == 2
    remaining = assert_ok(await client.get("/api/channel/"))
    assert [channel["id"] for channel in remaining] == [enabled["id"]]
    assert {cid for _, _, cid, *_ in await abilities(admin.database)} == {enabled["id"]}
    await announced(admin, [manual["id"], auto["id"]])
    assert assert_ok(await client.delete("/api/channel/disabled")) == 0


async def test_groups_are_the_keys_of_the_group_ratio_option(admin: AdminHarness) -> None:
    client = admin.client(admin.root)
    assert sorted(assert_ok(await client.get("/api/group/"))) == ["default", "svip", "vip"]
    async with admin.database.session() as session:
        await session.merge(Option(key="GroupRatio", value='{"default": 1, "partners": 0.5}'))
    assert assert_ok(await client.get("/api/group")) == ["default", "partners"]
    alice = await admin.add_user("alice")
    assert_refused(await admin.client(alice).get("/api/group/"), message="权限不足")


async def test_models_are_listed_by_channel_type_for_users_and_all_at_once_for_admins(
    admin: AdminHarness,
) -> None:
    alice = await admin.add_user("alice")
    by_type = assert_ok(await admin.client(alice).get("/api/models"))
    assert "gpt-4o-mini" in by_type["1"]
    assert any(model.startswith("claude") for model in by_type["14"])
    assert_refused(await admin.client().get("/api/models"), status_code=401)

    response = await admin.client(admin.root).get("/api/channel/models")
    body = response.json()
    assert body["success"] is True
    assert body["object"] == "list"
    ids = [card["id"] for card in body["data"]]
    assert len(ids) == len(set(ids))
    assert set(ids) == {model for models in by_type.values() for model in models}
    [card] = [card for card in body["data"] if card["id"] == "gpt-4o-mini"]
    assert card == {
        "id": "gpt-4o-mini",
        "object": "model",
        "created": 1626777600,
        "owned_by": "openai",
        "root": "gpt-4o-mini",
        "parent": None,
    }


async def test_a_refused_write_changes_nothing_and_announces_nothing(admin: AdminHarness) -> None:
    [channel] = await create(admin)
    await announced(admin, [channel["id"]])  # events arrive in order: none is pending now
    admin.config_changes.clear()
    response = await admin.client(admin.root).put(
        "/api/channel/", json={"id": channel["id"], "config": "[]", "priority": 9}
    )
    assert_refused(response, message="config")
    row = await channel_row(admin.database, channel["id"])
    assert row is not None
    assert row.priority == 0
    with pytest.raises(AssertionError):
        await admin.wait_for_change("channel", timeout=0.3)
