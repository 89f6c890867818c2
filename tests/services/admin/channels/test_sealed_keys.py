"""With CRYPTO_SECRET, keys are stored encrypted, and relay and health still use them."""

from __future__ import annotations

from sqlalchemy import select

from libs.common.crypto import SEALED_PREFIX, SecretBox
from libs.common.db.models import Ability, Channel
from services.relay.catalog import load_catalog
from tests.fakes import FakeUpstream
from tests.services.admin.channels.support import (
    SECRET,
    channel_body,
    channel_row,
    health_service,
)
from tests.services.admin.harness import AdminHarness, assert_ok


async def stored_keys(admin: AdminHarness) -> dict[int, str]:
    async with admin.database.session() as session:
        rows = await session.execute(select(Channel.id, Channel.key).order_by(Channel.id))
        return {int(channel_id): str(key) for channel_id, key in rows}


async def test_keys_are_encrypted_at_rest_and_the_relay_reads_them_decrypted(
    sealed_admin: AdminHarness,
) -> None:
    admin = sealed_admin
    client = admin.client(admin.root)
    created = assert_ok(
        await client.post("/api/channel/", json=channel_body(key="sk-same\nsk-same\nsk-third"))
    )
    ids = [channel["id"] for channel in created]
    stored = await stored_keys(admin)
    assert all(key.startswith(SEALED_PREFIX) for key in stored.values())
    assert not any("sk-same" in key or "sk-third" in key for key in stored.values())
    assert stored[ids[0]] != stored[ids[1]]  # a fresh nonce per encryption

    # a row One API wrote (plaintext) keeps working next to sealed ones
    async with admin.database.session() as session:
        legacy = Channel(name="legacy", type=1, key="sk-plain", models="gpt-4o-mini")
        session.add(legacy)
        await session.flush()
        session.add(Ability(group="default", model="gpt-4o-mini", channel_id=legacy.id))

    catalog = await load_catalog(admin.database, SecretBox(SECRET))
    keys = {channel_id: entry.info.key for channel_id, entry in catalog.channels.items()}
    assert keys == {ids[0]: "sk-same", ids[1]: "sk-same", ids[2]: "sk-third", legacy.id: "sk-plain"}
    assert catalog.select("default", "gpt-4o") is not None

    # a relay without the secret (or with another) leaves the sealed channels out entirely
    for box in (SecretBox(), SecretBox("another secret")):
        catalog = await load_catalog(admin.database, box)
        assert set(catalog.channels) == {legacy.id}
        assert catalog.select("default", "gpt-4o") is None

    # an update with a new key seals it; an empty key keeps the stored ciphertext as it is
    assert_ok(await client.put("/api/channel/", json={"id": ids[2], "key": "sk-rotated"}))
    assert_ok(await client.put("/api/channel/", json={"id": ids[0], "key": "", "priority": 4}))
    after = await stored_keys(admin)
    assert after[ids[0]] == stored[ids[0]]
    assert after[ids[2]].startswith(SEALED_PREFIX)
    assert SecretBox(SECRET).open(after[ids[2]]) == "sk-rotated"


async def test_health_tests_a_channel_with_its_decrypted_key(
    sealed_admin: AdminHarness, admin_database_url: str, nats_url: str, nats_namespace: str
) -> None:
    admin = sealed_admin
    async with FakeUpstream("openai", keys=["sk-sealed-upstream"]) as fake:
        [channel] = assert_ok(
            await admin.client(admin.root).post(
                "/api/channel/", json=channel_body(key="sk-sealed-upstream", base_url=fake.url)
            )
        )
        row = await channel_row(admin.database, channel["id"])
        assert row is not None
        assert row.key.startswith(SEALED_PREFIX)
        async with health_service(
            admin_database_url, nats_url, nats_namespace, crypto_secret=SECRET
        ):
            answer = (
                await admin.client(admin.root).get(f"/api/channel/test/{channel['id']}")
            ).json()
        assert answer["success"] is True, answer
        assert fake.last_request.headers["authorization"] == "Bearer sk-sealed-upstream"
