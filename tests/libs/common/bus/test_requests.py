"""Request/reply on the bus: one server of a queue group answers; failures are clear."""

from __future__ import annotations

import asyncio

import pytest

from libs.common.bus import Bus, BusError, BusUnavailable
from libs.common.events import (
    HEALTH_QUEUE,
    REQUESTS,
    BalanceReply,
    BalanceRequest,
    ChannelTestReply,
    ChannelTestRequest,
    ChannelTestResult,
    decode,
    encode,
    request_spec,
)
from tests.libs.common.bus.support import BusFactory


def test_requests_are_declared_once_with_their_reply() -> None:
    assert request_spec(ChannelTestRequest).subject == "health.test"
    assert request_spec(ChannelTestRequest).reply is ChannelTestReply
    assert request_spec(BalanceRequest).subject == "health.balance"
    assert request_spec(BalanceRequest).reply is BalanceReply
    assert len({spec.subject for spec in REQUESTS}) == len(REQUESTS)
    reply = ChannelTestReply(
        results=[ChannelTestResult(channel_id=1, success=True, response_time_ms=12, status=1)]
    )
    assert decode(encode(reply), ChannelTestReply) == reply
    assert decode(b"{}", ChannelTestRequest) == ChannelTestRequest()  # every field optional


async def test_each_request_reaches_one_server_of_the_group(connect_bus: BusFactory) -> None:
    servers = [await connect_bus(), await connect_bus()]
    client = await connect_bus()
    answered: list[int] = []

    def handler_for(index: int):  # type: ignore[no-untyped-def]
        async def answer(request: ChannelTestRequest) -> ChannelTestReply:
            answered.append(index)
            return ChannelTestReply(message=f"server {index} saw {request.channel_ids}")

        return answer

    for index, server in enumerate(servers):
        await server.serve(ChannelTestRequest, handler_for(index), queue=HEALTH_QUEUE)
    for i in range(10):
        reply = await client.request(ChannelTestRequest(channel_ids=[i]), ChannelTestReply)
        assert reply.message.endswith(f"saw [{i}]")
    assert len(answered) == 10


async def test_slow_requests_do_not_hold_up_the_others(bus: Bus, connect_bus: BusFactory) -> None:
    release = asyncio.Event()

    async def answer(request: ChannelTestRequest) -> ChannelTestReply:
        if request.wait:
            await release.wait()
        return ChannelTestReply(message="done")

    await bus.serve(ChannelTestRequest, answer, queue=HEALTH_QUEUE)
    client = await connect_bus()
    slow = asyncio.create_task(client.request(ChannelTestRequest(wait=True), ChannelTestReply))
    quick = await client.request(ChannelTestRequest(), ChannelTestReply, timeout=2)
    assert quick.message == "done"
    release.set()
    assert (await slow).message == "done"


async def test_nobody_serving_a_failing_handler_and_a_wrong_reply_type(
    bus: Bus, connect_bus: BusFactory
) -> None:
    client = await connect_bus()
    with pytest.raises(BusUnavailable, match=r"nothing serves health\.balance"):
        await client.request(BalanceRequest(), BalanceReply, timeout=1)
    with pytest.raises(BusError, match="answered with BalanceReply"):
        await client.request(BalanceRequest(), ChannelTestReply, timeout=1)

    async def broken(request: BalanceRequest) -> BalanceReply:
        raise RuntimeError("boom")

    await bus.serve(BalanceRequest, broken, queue=HEALTH_QUEUE)
    with pytest.raises(BusUnavailable, match=r"no answer on health\.balance"):
        await client.request(BalanceRequest(), BalanceReply, timeout=0.5)
