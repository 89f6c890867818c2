"""The split deployment: admin, billing, health and two relays as separate processes behind
nginx, on this machine's PostgreSQL, Redis and NATS. One relay is SIGKILLed under load.

What must hold (issue 8's acceptance):
- every request the client saw succeed is billed exactly: once the usage stream is drained,
  each succeeded request id has exactly one consume log, with the cost of the usage its
  response reported; no request id is billed twice; the token's and the user's used quota
  equal the sum of the logs' quota. (A failed request may be billed only if its relay stored
  its usage and died before the answer's last bytes left: the relay ends a response only
  after JetStream stored its usage, RELAY_USAGE_CONFIRM_SECONDS.)
- the others failed cleanly (an error status or a cut connection, never a hang) or were
  retried by nginx onto the surviving relay (which its access log shows);
- the survivor carries the load afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from sqlalchemy import select

from libs.common.bus import Bus
from libs.common.db import Database
from libs.common.db.models import Ability, Channel, Log, Option, Token, User
from libs.common.settings import Settings
from tests.fakes import FakeProcess, slow
from tests.harness.nginx import Nginx, nginx_binary
from tests.harness.process import OneapiProcess
from tests.services.billing.support import stream_messages, wait_for

pytestmark = pytest.mark.slow

MODEL = "split-model"
TOKEN_KEY = "splitdeploy" + "0" * 37
TOKEN_QUOTA = 10**9
USER_QUOTA = 10**12
WORKERS = 8
BEFORE_KILL = 60  # successful requests before the kill
AFTER_KILL = 60  # and after it
SURVIVOR_CHECK = 20
CLIENT_TIMEOUT = 60.0
CONSUME = 2  # logs.type of a consume log
FAIL_TIMEOUT = 1  # seconds nginx keeps a failed relay out of rotation


@dataclass
class Result:
    """What the client saw of one request."""

    ok: bool
    stream: bool
    started: float
    seconds: float
    request_id: str = ""
    quota: int = 0  # the cost of the usage the response reported
    upstream: str = ""  # nginx's $upstream_addr: two addresses when it retried
    error: str = ""
    status: int | None = None


async def seed(database: Database, upstream: str) -> tuple[int, int]:
    """The user, token and channel, written straight into the database the admin migrated."""
    async with database.session() as session:
        user = User(username="splituser", password="x", quota=USER_QUOTA)
        session.add(user)
        channel = Channel(name="fake", type=1, key="sk-up", base_url=upstream, models=MODEL)
        session.add(channel)
        await session.flush()
        session.add(Ability(group="default", model=MODEL, channel_id=channel.id, enabled=True))
        token = Token(
            user_id=user.id,
            key=TOKEN_KEY,
            name="split",
            remain_quota=TOKEN_QUOTA,
            unlimited_quota=False,
            created_time=int(time.time()),
        )
        session.add(token)
        # Cost = prompt + completion tokens: what the client can compute from the usage.
        for key, value in {
            "ModelRatio": f'{{"{MODEL}": 1}}',
            "CompletionRatio": f'{{"{MODEL}": 1}}',
            "RetryTimes": "0",
        }.items():
            await session.merge(Option(key=key, value=value))
        await session.flush()
        return user.id, token.id


async def one_request(client: openai.AsyncOpenAI, number: int, stream: bool) -> Result:
    started = time.monotonic()
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": f"request {number} " + "word " * (number % 7)}
    ]
    result = Result(ok=False, stream=stream, started=started, seconds=0.0)
    try:
        if stream:
            raw = await client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=messages,
                stream=True,
                stream_options={"include_usage": True},
            )
            result.request_id = raw.headers.get("X-Oneapi-Request-Id", "")
            result.upstream = raw.headers.get("X-Oneapi-Upstream", "")
            usage = None
            async for chunk in raw.parse():
                usage = chunk.usage or usage
            assert usage is not None, "a stream that ended cleanly had no usage chunk"
        else:
            raw_answer = await client.chat.completions.with_raw_response.create(
                model=MODEL,
                messages=messages,
            )
            result.request_id = raw_answer.headers.get("X-Oneapi-Request-Id", "")
            result.upstream = raw_answer.headers.get("X-Oneapi-Upstream", "")
            usage = raw_answer.parse().usage
            assert usage is not None
        result.quota = usage.prompt_tokens + usage.completion_tokens
        result.ok = True
    except openai.APIStatusError as exc:
        result.status = exc.status_code
        result.error = f"{type(exc).__name__} {exc.status_code}"
    except (openai.APIConnectionError, httpx.HTTPError) as exc:
        # A stream cut when its relay died; openai.APITimeoutError is a hang: not clean.
        result.error = type(exc).__name__
    result.seconds = time.monotonic() - started
    return result


class Load:
    """WORKERS tasks sending requests through nginx until told to stop."""

    def __init__(self, base_url: str) -> None:
        self.client = openai.AsyncOpenAI(
            base_url=base_url, api_key="sk-" + TOKEN_KEY, max_retries=0, timeout=CLIENT_TIMEOUT
        )
        self.results: list[Result] = []
        self._stop = asyncio.Event()
        self._numbers = iter(range(10**9))

    async def _worker(self) -> None:
        while not self._stop.is_set():
            number = next(self._numbers)
            self.results.append(await one_request(self.client, number, stream=number % 2 == 1))

    def succeeded(self) -> int:
        return sum(result.ok for result in self.results)

    async def run_until(self, condition: asyncio.Event) -> None:
        workers = [asyncio.create_task(self._worker()) for _ in range(WORKERS)]
        await condition.wait()
        self._stop.set()
        await asyncio.gather(*workers)


def json_log_lines(process: OneapiProcess) -> list[dict[str, object]]:
    entries = []
    for line in process.output().splitlines():
        entry = json.loads(line)  # LOG_FORMAT=json: every line is one object
        assert {"time", "level", "logger", "message"} <= set(entry), line
        entries.append(entry)
    return entries


async def test_split_deployment_bills_exactly_what_clients_saw_when_a_relay_is_killed(
    postgres_url: str, redis_url: str, nats_url: str, nats_namespace: str, tmp_path: Path
) -> None:
    nginx_binary()  # skip (or fail under ONEAPI_TEST_REQUIRE_SERVICES=1) before any work
    env = {
        "SQL_DSN": postgres_url,
        "REDIS_CONN_STRING": redis_url,
        "NATS_URL": nats_url,
        "NATS_NAMESPACE": nats_namespace,
        "BATCH_UPDATE_INTERVAL": "1",
        "SHUTDOWN_GRACE_SECONDS": "5",
        "LOG_FORMAT": "json",
    }
    processes: list[OneapiProcess] = []

    def launch(target: str, name: str) -> OneapiProcess:
        process = OneapiProcess(["run", "--target", target], data_dir=tmp_path / name, env=env)
        processes.append(process.start())
        return process

    database = Database.from_settings(Settings(sql_dsn=postgres_url))
    bus = await Bus.connect(nats_url, namespace=nats_namespace)
    # The fake answers after 30 ms and streams a frame every 5 ms: requests are in flight.
    with FakeProcess("openai") as fake:
        fake.add_rule(slow(0.03, 0.005))
        try:
            admin = launch("admin", "admin")
            await asyncio.to_thread(admin.wait_ready, 120)  # the admin migrates the schema
            user_id, token_id = await seed(database, fake.url)
            billing = launch("billing", "billing")
            health = launch("health", "health")
            relays = [launch("relay", "relay-a"), launch("relay", "relay-b")]
            for process in (billing, health, *relays):
                await asyncio.to_thread(process.wait_ready, 120)
            with Nginx(
                tmp_path / "nginx",
                relays=[relay.port for relay in relays],
                admin=admin.port,
                fail_timeout=FAIL_TIMEOUT,
            ) as ingress:
                # everything but /v1 and /dashboard goes to the admin
                async with httpx.AsyncClient(base_url=ingress.url, timeout=10) as http:
                    status = await http.get("/api/status")
                    assert status.json()["success"] is True
                    billing_page = await http.get(
                        "/dashboard/billing/subscription",
                        headers={"Authorization": f"Bearer sk-{TOKEN_KEY}"},
                    )
                    assert billing_page.json()["object"] == "billing_subscription"

                load = Load(ingress.url + "/v1")
                done = asyncio.Event()
                victim, survivor = relays
                killed_at = 0.0

                async def conduct() -> None:
                    nonlocal killed_at
                    while load.succeeded() < BEFORE_KILL:
                        await asyncio.sleep(0.01)
                    os.kill(victim.pid, signal.SIGKILL)  # mid-load: requests are in flight
                    killed_at = time.monotonic()
                    target = load.succeeded() + AFTER_KILL
                    while load.succeeded() < target:
                        await asyncio.sleep(0.01)
                    done.set()

                conductor = asyncio.create_task(conduct())
                await asyncio.wait_for(load.run_until(done), timeout=240)
                await conductor
                assert victim.process is not None
                assert victim.process.wait(10) == -signal.SIGKILL

                # The survivor carries the load: the next requests all succeed. Once the dead
                # relay's fail_timeout has passed nginx tries it again, is refused before sending
                # anything, and passes the request to the survivor.
                await asyncio.sleep(FAIL_TIMEOUT + 0.5)
                after = [
                    await one_request(load.client, 10**6 + i, stream=i % 2 == 1)
                    for i in range(SURVIVOR_CHECK)
                ]
                assert all(result.ok for result in after), [r.error for r in after]
                survivor_address = f"127.0.0.1:{survivor.port}"
                assert {r.upstream.split(", ")[-1] for r in after} == {survivor_address}
                victim_address = f"127.0.0.1:{victim.port}"
                both = f"{victim_address}, {survivor_address}"
                retried = [r for r in after if r.upstream == both]
                assert retried, [r.upstream for r in after]
                access_log = ingress.access_log()
                nginx_output = ingress.output()

            results = load.results + after
            succeeded = [r for r in results if r.ok]
            failed = [r for r in results if not r.ok]
            summary = (
                f"{len(succeeded)} succeeded, {len(failed)} failed "
                f"({Counter(r.error for r in failed)}), "
                f"{sum(', ' in r.upstream for r in succeeded)} retried by nginx"
            )
            print(summary)

            # Failures were clean: an error status from nginx or a cut stream, never a hang.
            for result in failed:
                assert result.status in (None, 502, 503, 504), (result, summary)
                assert result.error != "APITimeoutError", (result, summary)
                assert result.seconds < CLIENT_TIMEOUT / 2, (result, summary)
                assert result.started < killed_at + 5, (result, summary)
            # Both relays served before the kill; nginx retried onto the survivor what could
            # not reach the victim (its access log names both upstreams for those requests).
            served = {r.upstream.split(", ")[-1] for r in succeeded if r.started < killed_at}
            assert served == {f"127.0.0.1:{relay.port}" for relay in relays}, summary
            for result in succeeded:
                assert result.request_id, result
                if ", " in result.upstream:
                    assert result.upstream.split(", ")[-1] == survivor_address, result

            # Billing drains the usage stream: nothing is left to settle.
            async def drained() -> bool:
                return await stream_messages(bus) == 0

            await wait_for(drained, timeout=60, what="billing to drain the usage stream")
            await asyncio.sleep(1.5)  # one more batch interval: the last commit is visible

            async with database.log_session() as session:
                logs = (
                    (await session.execute(select(Log).where(Log.type == CONSUME))).scalars().all()
                )
            async with database.session() as session:
                token = await session.get(Token, token_id)
                user = await session.get(User, user_id)
            assert token is not None
            assert user is not None

            per_request = Counter(log.request_id for log in logs)
            assert [rid for rid, count in per_request.items() if count > 1] == []
            logged = {log.request_id: log.quota for log in logs}
            seen = {r.request_id: r.quota for r in succeeded}
            missing = sorted(set(seen) - set(logged))
            assert missing == [], f"succeeded but never billed: {missing}; {summary}"
            wrong = {rid: (seen[rid], logged[rid]) for rid in seen if logged[rid] != seen[rid]}
            assert wrong == {}, "billed a different cost than the response's usage"
            # A request billed that the client did not see succeed can only be one that failed:
            # its relay stored the usage and died before the answer's last bytes left.
            unseen = set(logged) - set(seen)
            assert len(unseen) <= len(failed), (sorted(unseen), summary)
            spent = sum(logged.values())
            assert sum(logged[rid] for rid in seen) == sum(seen.values())
            assert token.used_quota == spent
            assert token.remain_quota == TOKEN_QUOTA - spent
            assert user.used_quota == spent
            assert user.quota == USER_QUOTA - spent
            assert user.request_count == len(logged)

            # The processes logged one JSON object per line, with no secret.
            for process in (admin, billing, health, *relays):
                entries = json_log_lines(process)
                assert entries, process.args
                assert not [e for e in entries if e["level"] == "CRITICAL"]
            assert "Traceback" not in survivor.output()
            assert access_log, nginx_output
        finally:
            for process in processes:
                if process.process is not None and process.process.poll() is None:
                    process.stop(signal.SIGTERM)
                process.__exit__(None, None, None)
            await bus.close()
            await database.dispose()
