"""Channel tests and balance queries, through `libs.providers` like real traffic.

A test is one non-stream chat completion with `TEST_PROMPT`, built as a `RelayRequest` and sent
with the adaptor's `open` (the relay's code path), then read with `read_response` or
`read_error`. A balance query sends the adaptor's `balance_requests` and reads them with
`read_balance`. Neither touches the database: the service records what they find.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

import aiohttp

from libs.providers import (
    Adaptors,
    BalanceUnsupportedError,
    Mode,
    ProviderError,
    RelayRequest,
    UnsupportedChannelTypeError,
    UpstreamError,
    display_name,
)
from services.health.schemas import BalanceOutcome, ChannelRow, ProbeOutcome

logger = logging.getLogger(__name__)

TEST_MAX_TOKENS: Final = 16
"""Enough for a model to say its name; small, so a test costs next to nothing."""
FALLBACK_TEST_MODEL: Final = "gpt-3.5-turbo"
"""One API's test model for a channel that lists none."""
BALANCE_TIMEOUT_SECONDS: Final = 30.0
TEST_MODEL_CONFIG_KEY: Final = "test_model"
"""An operator's test model for a channel, in its `config` JSON."""

_NOT_CHAT: Final = re.compile(
    r"embed|moderation|whisper|tts|dall-e|image|rerank|transcri|speech|audio|"
    r"stable-diffusion|flux|midjourney|^bge-|^m3e|^text-(similarity|search)",
    re.IGNORECASE,
)


def is_chat_model(model: str) -> bool:
    """Whether a model name looks like one that answers chat completions."""
    return not _NOT_CHAT.search(model)


def pick_test_model(channel: ChannelRow, chosen: str = "", defaults: tuple[str, ...] = ()) -> str:
    """The model a test asks for: the operator's choice (the request's, else the channel's
    `config.test_model`), else the channel's first chat model, else its first model, else
    the type's first default model, else One API's gpt-3.5-turbo."""
    configured = channel.config.get(TEST_MODEL_CONFIG_KEY)
    if chosen.strip():
        return chosen.strip()
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    for model in channel.models:
        if is_chat_model(model):
            return model
    if channel.models:
        return channel.models[0]
    for model in defaults:
        if is_chat_model(model):
            return model
    return FALLBACK_TEST_MODEL


class Prober:
    """Sends channel tests and balance queries with one aiohttp session."""

    def __init__(
        self,
        adaptors: Adaptors,
        http: aiohttp.ClientSession,
        *,
        prompt: str,
        timeout: float,
    ) -> None:
        self._adaptors = adaptors
        self._http = http
        self._prompt = prompt
        self._timeout = timeout

    def model_for(self, channel: ChannelRow, chosen: str = "") -> str:
        try:
            defaults = self._adaptors.for_type(channel.type).default_models()
        except UnsupportedChannelTypeError:
            defaults = ()
        return pick_test_model(channel, chosen, defaults)

    async def test(self, channel: ChannelRow, model: str) -> ProbeOutcome:
        """Ask `channel` one short chat completion for `model` (mapped as the relay maps it).

        Never raises: whatever goes wrong is the outcome's message.
        """
        began = time.monotonic()
        try:
            return await self._test(channel, model, began)
        except Exception as exc:  # an adaptor's bug must not end a round of tests
            logger.exception("testing channel #%d failed unexpectedly", channel.id)
            elapsed = int((time.monotonic() - began) * 1000)
            return ProbeOutcome(model, False, elapsed, f"test failed: {type(exc).__name__}")

    async def _test(self, channel: ChannelRow, model: str, began: float) -> ProbeOutcome:

        def failed(message: str, **fields: object) -> ProbeOutcome:
            elapsed = int((time.monotonic() - began) * 1000)
            return ProbeOutcome(model, False, elapsed, message, **fields)  # type: ignore[arg-type]

        try:
            adaptor = self._adaptors.for_type(channel.type)
        except UnsupportedChannelTypeError as exc:
            return failed(str(exc))
        if Mode.CHAT not in adaptor.modes:
            return failed(f"channel type {channel.type} does not serve chat completions")
        upstream_model = channel.model_mapping.get(model, model)
        request = RelayRequest(
            mode=Mode.CHAT,
            model=upstream_model,
            body={
                "model": upstream_model,
                "messages": [{"role": "user", "content": self._prompt}],
                "max_tokens": TEST_MAX_TOKENS,
            },
            stream=False,
        )
        try:
            response = await adaptor.open(
                self._http,
                channel.info,
                request,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            )
            try:
                body = await response.read()
            finally:
                response.release()
        except TimeoutError:
            return failed(f"no answer within {self._timeout:g} s", timed_out=True)
        except aiohttp.ClientError as exc:
            return failed(f"upstream unreachable: {type(exc).__name__}")
        except ProviderError as exc:
            return failed(str(exc))
        elapsed = int((time.monotonic() - began) * 1000)
        try:
            if response.status not in (200, 201):
                raise adaptor.read_error(response.status, body)
            adaptor.read_response(request, body)
        except UpstreamError as exc:
            return ProbeOutcome(
                model,
                False,
                elapsed,
                exc.message,
                status_code=exc.status_code or response.status,
                error_type=exc.type or "",
                error_code=str(exc.code or ""),
            )
        except ProviderError as exc:
            return ProbeOutcome(model, False, elapsed, str(exc), status_code=response.status)
        return ProbeOutcome(model, True, elapsed, status_code=response.status)

    async def balance(self, channel: ChannelRow) -> BalanceOutcome:
        """The channel's balance in USD from its provider, or why there is none (never raises)."""
        try:
            return await self._balance(channel)
        except Exception as exc:  # an adaptor's bug must not end a round of refreshes
            logger.exception("reading the balance of channel #%d failed unexpectedly", channel.id)
            return BalanceOutcome(None, f"balance query failed: {type(exc).__name__}")

    async def _balance(self, channel: ChannelRow) -> BalanceOutcome:
        try:
            adaptor = self._adaptors.for_type(channel.type)
            requests = adaptor.balance_requests(channel.info)
        except (BalanceUnsupportedError, UnsupportedChannelTypeError) as exc:
            return BalanceOutcome(
                None,
                f"{display_name(channel.type)} channels have no balance to query ({exc})",
                unsupported=True,
            )
        bodies: list[bytes] = []
        try:
            for upstream in requests:
                async with self._http.request(
                    upstream.method,
                    upstream.url,
                    headers=upstream.headers,
                    data=upstream.body,
                    timeout=aiohttp.ClientTimeout(total=BALANCE_TIMEOUT_SECONDS),
                ) as response:
                    body = await response.read()
                    if response.status >= 300:
                        error = adaptor.read_error(response.status, body)
                        return BalanceOutcome(
                            None, f"balance query failed: HTTP {response.status}: {error.message}"
                        )
                bodies.append(body)
            return BalanceOutcome(adaptor.read_balance(bodies))
        except TimeoutError:
            return BalanceOutcome(None, f"no balance answer within {BALANCE_TIMEOUT_SECONDS:g} s")
        except aiohttp.ClientError as exc:
            return BalanceOutcome(None, f"balance API unreachable: {type(exc).__name__}")
        except ProviderError as exc:
            return BalanceOutcome(None, str(exc))
