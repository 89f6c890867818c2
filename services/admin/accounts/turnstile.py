"""Cloudflare Turnstile: when `TurnstileCheckEnabled`, a route wants a `turnstile` token that
Cloudflare's siteverify accepts with `TurnstileSecretKey`.

One API remembers a passed check in its session, and its front-end sends the same token with
the verification-code request and then the registration. Here the token itself is remembered,
in the shared cache, for the five minutes Cloudflare keeps a token valid: the second request
passes without asking Cloudflare again (which would refuse a token it has already seen).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Annotated, Final

from fastapi import Depends, Query

from libs.common.cache import CacheError
from services.admin.accounts.outbound import OutboundDep, call_json
from services.admin.deps import ClientIpDep, OptionsDep, StateDep
from services.admin.errors import AdminError

logger = logging.getLogger(__name__)

PASSED_TOKEN_TTL_SECONDS: Final = 300
SERVICE_NAME: Final = "Turnstile"


def _passed_key(token: str) -> str:
    return "accounts:turnstile:" + hashlib.sha256(token.encode()).hexdigest()


async def turnstile_check(
    options: OptionsDep,
    state: StateDep,
    ip: ClientIpDep,
    outbound: OutboundDep,
    turnstile: Annotated[
        str, Query(max_length=4096, description="Turnstile token, when the check is enabled")
    ] = "",
) -> None:
    if not options.flag("TurnstileCheckEnabled"):
        return
    if not turnstile:
        raise AdminError("Turnstile token 为空")
    key = _passed_key(turnstile)
    try:
        if await state.cache.get(key) is not None:
            return
    except CacheError as exc:
        logger.warning("cannot read remembered Turnstile tokens: %s", exc)
    answer = await call_json(
        outbound,
        SERVICE_NAME,
        "POST",
        outbound.turnstile_verify_url,
        form={
            "secret": options.text("TurnstileSecretKey"),
            "response": turnstile,
            "remoteip": ip,
        },
    )
    if not (isinstance(answer.body, dict) and answer.body.get("success") is True):
        raise AdminError("Turnstile 校验失败，请刷新重试！")
    try:
        await state.cache.set(key, b"1", ttl=PASSED_TOKEN_TTL_SECONDS)
    except CacheError as exc:
        logger.warning("cannot remember a passed Turnstile token: %s", exc)


TurnstileCheck = Depends(turnstile_check)
