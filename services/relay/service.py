"""Relaying one request: authenticate, admit, pick a channel, forward, retry, account.

The order of a request, and who answers what:

    ingress      body (size, gzip), key, client address               400 / 401 / 413
    accounts     token and user, from cache                           401 / 403
    limits       requests per minute, concurrent upstream requests    429
    catalog      a channel for (group, model), by priority and weight 503
    ledger       the estimate reserved against the balances           403
    adaptor      the upstream exchange, converted to OpenAI's format  upstream's status
    publisher    one `usage` event per billed request, one `relay.outcome` per attempt

Nothing here writes SQL: spend leaves as `usage` events, which billing settles.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.requests import Request
from starlette.responses import Response

from libs.common.db.models import TokenStatus, UserRole, UserStatus
from libs.common.events import RelayOutcome, UsageEvent
from libs.common.net import client_address
from libs.common.settings import Settings
from libs.common.tokenizer import Tokenizer
from libs.providers.base import (
    Adaptor,
    FormFile,
    Mode,
    RelayRequest,
    UpstreamError,
    UpstreamResponse,
)
from libs.providers.errors import InvalidRequestError, UnsupportedChannelTypeError
from libs.providers.registry import Adaptors
from services.relay.accounts import Accounts, TokenRecord, UserRecord
from services.relay.admission import (
    Account,
    Admission,
    InsufficientQuotaError,
    Ledger,
    LedgerError,
)
from services.relay.catalog import Catalog, ChannelEntry
from services.relay.errors import RelayError, bad_request, forbidden, unauthorized
from services.relay.ingress import parse_api_key, read_body
from services.relay.limits import Limiter
from services.relay.metrics import RelayMetrics
from services.relay.pricing import (
    Charge,
    ImageMeter,
    Meter,
    Ratios,
    SpeechMeter,
    TextMeter,
    TranscriptMeter,
    ratios_for,
)
from services.relay.publisher import UsagePublisher
from services.relay.streaming import EventStreamResponse

logger = logging.getLogger(__name__)

DEFAULT_MODELS = {
    Mode.MODERATIONS: "text-moderation-stable",
    Mode.IMAGES: "dall-e-2",
    Mode.TRANSCRIPTION: "whisper-1",
    Mode.TRANSLATION: "whisper-1",
}
USAGE_MODE_NAMES = {
    Mode.CHAT: "chat",
    Mode.COMPLETIONS: "completion",
    Mode.EDITS: "edit",
    Mode.EMBEDDINGS: "embedding",
    Mode.MODERATIONS: "moderation",
    Mode.IMAGES: "image",
    Mode.SPEECH: "audio_speech",
    Mode.TRANSCRIPTION: "audio_transcription",
    Mode.TRANSLATION: "audio_translation",
}
STREAMING_MODES = frozenset({Mode.CHAT, Mode.COMPLETIONS})
MAX_TOKENS_LIMIT = 1 << 30
TTS_INPUT_LIMIT = 4096
SATURATED = "upstream load of this group is saturated, please retry later"
PROXY_CHANNEL_TYPE = 43


class CatalogHolder:
    """The current catalog snapshot; replaced whole, read without locks."""

    def __init__(self, catalog: Catalog) -> None:
        self.current = catalog


@dataclass(slots=True)
class Caller:
    request_id: str
    token: TokenRecord
    user: UserRecord
    pinned_channel: int | None
    started: float = field(default_factory=time.monotonic)
    model: str = ""  # known once the body is read; for the request metric
    channel_id: int = 0  # the last channel tried


@dataclass(slots=True)
class Attempt:
    """What the loop knows after one upstream attempt."""

    channel: ChannelEntry
    error: RelayError | None = None
    retryable: bool = False


@dataclass(slots=True)
class Job:
    """What stays the same across one request's attempts."""

    caller: Caller
    mode: Mode
    model: str
    body: dict[str, Any]
    raw: bytes | None
    files: tuple[FormFile, ...]
    meter: Meter
    stream: bool
    admission: Admission | None = None  # set once the estimate is reserved
    recording: asyncio.Task[asyncio.Future[bool] | None] | None = None  # set by _finish

    @property
    def admitted(self) -> Admission:
        assert self.admission is not None, "the job was not admitted"
        return self.admission


class Relay:
    """One per relay process; every request goes through `handle_json` or `handle_multipart`."""

    def __init__(
        self,
        *,
        settings: Settings,
        catalogs: CatalogHolder,
        accounts: Accounts,
        ledger: Ledger,
        publisher: UsagePublisher,
        adaptors: Adaptors,
        tokenizer: Tokenizer,
        http: aiohttp.ClientSession,
        metrics: RelayMetrics,
        limiter: Limiter,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._settings = settings
        self._tracer = tracer
        self._catalogs = catalogs
        self._accounts = accounts
        self._ledger = ledger
        self._publisher = publisher
        self._adaptors = adaptors
        self._tokenizer = tokenizer
        self._http = http
        self._metrics = metrics
        self._limiter = limiter
        self._cooling: dict[int, float] = {}
        self._finishing: set[asyncio.Task[Any]] = set()
        self._timeout = aiohttp.ClientTimeout(total=settings.relay_timeout or None, sock_connect=30)

    # --- authentication -----------------------------------------------------------------------

    async def authenticate(self, request: Request, request_id: str) -> Caller:
        api_key = parse_api_key(request)
        token = await self._accounts.token(api_key.key)
        if token is None:
            raise unauthorized("无效的令牌 (invalid API key)")
        if token.status == TokenStatus.EXHAUSTED:
            raise unauthorized("该令牌额度已用尽 (token quota exhausted)", code="token_exhausted")
        if token.status == TokenStatus.EXPIRED or (
            token.expired_time != -1 and token.expired_time < time.time()
        ):
            raise unauthorized("该令牌已过期 (token expired)", code="token_expired")
        if token.status != TokenStatus.ENABLED:
            raise unauthorized("该令牌状态不可用 (token disabled)", code="token_disabled")
        if not token.unlimited_quota and token.remain_quota <= 0:
            raise unauthorized("该令牌额度已用尽 (token quota exhausted)", code="token_exhausted")
        address = client_address(request, self._settings.trusted_proxies)
        if not token.allows_address(address):
            raise forbidden(
                f"该令牌只能在指定网段使用 (address {address} is not allowed)",
                code="address_not_allowed",
            )
        user = await self._accounts.user(token.user_id)
        if user is None or user.status != UserStatus.ENABLED:
            raise forbidden("用户已被封禁 (user disabled)", code="user_disabled")
        if api_key.channel_id is not None and user.role < UserRole.ADMIN:
            raise forbidden(
                "普通用户不支持指定渠道 (only admin tokens may pin a channel)",
                code="channel_pin_forbidden",
            )
        return Caller(request_id, token, user, api_key.channel_id)

    # --- simple answers -------------------------------------------------------------------------

    @property
    def metrics(self) -> RelayMetrics:
        return self._metrics

    @property
    def tracer(self) -> trace.Tracer | None:
        """The process's tracer; None when tracing is off (then no span work at all)."""
        return self._tracer

    @property
    def http(self) -> aiohttp.ClientSession:
        return self._http

    @property
    def max_request_bytes(self) -> int:
        return self._settings.relay_max_request_bytes

    def models_for(self, caller: Caller) -> list[tuple[str, int]]:
        """(model, channel type of one channel serving it) for the caller's group and token."""
        catalog = self._catalogs.current
        models = []
        for (group, model), tiers in sorted(catalog.routes.items()):
            if group == caller.user.group and caller.token.allows_model(model):
                models.append((model, catalog.channels[tiers[0].channel_ids[0]].info.type))
        return models

    def proxy_channel(self, channel_id: int) -> ChannelEntry | None:
        channel = self._catalogs.current.channels.get(channel_id)
        if channel is None or not channel.enabled or channel.info.type != PROXY_CHANNEL_TYPE:
            return None
        return channel

    def _amount(self, quota: int) -> float:
        options = self._catalogs.current.options
        if options.flag("DisplayInCurrencyEnabled"):
            return quota / options.number("QuotaPerUnit")
        return float(quota)

    def subscription(self, caller: Caller) -> dict[str, Any]:
        """OpenAI's billing subscription, as One API fills it: the token's (or user's) limit."""
        if caller.token.unlimited_quota:
            remain, used = caller.user.quota, caller.user.used_quota
        else:
            remain, used = caller.token.remain_quota, caller.token.used_quota
        amount = self._amount(remain + used)
        expires = caller.token.expired_time if caller.token.expired_time != -1 else 0
        return {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": amount,
            "hard_limit_usd": amount,
            "system_hard_limit_usd": amount,
            "access_until": expires,
        }

    def usage(self, caller: Caller) -> dict[str, Any]:
        used = caller.user.used_quota if caller.token.unlimited_quota else caller.token.used_quota
        return {"object": "list", "total_usage": self._amount(used) * 100}

    # --- entry points ---------------------------------------------------------------------------

    async def handle_json(
        self, request: Request, caller: Caller, mode: Mode, *, path_model: str | None = None
    ) -> Response:
        raw = await read_body(request, self._settings.relay_max_request_bytes)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise bad_request("request body is not valid JSON", code="invalid_json") from None
        if not isinstance(body, dict):
            raise bad_request("request body must be a JSON object", code="invalid_json")
        if path_model and not body.get("model"):
            body["model"] = path_model
            raw = b""  # changed: re-encode
        model = self._model_of(body, mode)
        stream = bool(body.get("stream")) and mode in STREAMING_MODES
        meter = self._meter(mode, model, body)
        return await self._relay(Job(caller, mode, model, body, raw or None, (), meter, stream))

    async def handle_multipart(self, request: Request, caller: Caller, mode: Mode) -> Response:
        if self._declared_size(request) > self._settings.relay_max_request_bytes:
            await read_body(request, self._settings.relay_max_request_bytes)  # raises 413
        form = await request.form(max_part_size=self._settings.relay_max_request_bytes)
        fields: dict[str, Any] = {}
        files: list[FormFile] = []
        for name, value in form.multi_items():
            if isinstance(value, str):
                fields[name] = value
            else:
                content = await value.read()
                files.append(
                    FormFile(
                        name=name,
                        filename=value.filename or "audio",
                        content=content,
                        content_type=value.content_type or "application/octet-stream",
                    )
                )
        if not files:
            raise bad_request("file is required", param="file")
        model = self._model_of(fields, mode)
        meter = TranscriptMeter(self._tokenizer.counter(model))
        return await self._relay(Job(caller, mode, model, fields, None, tuple(files), meter, False))

    @staticmethod
    def _declared_size(request: Request) -> int:
        declared = request.headers.get("content-length", "")
        return int(declared) if declared.isdigit() else 0

    def _model_of(self, body: dict[str, Any], mode: Mode) -> str:
        model = body.get("model") or DEFAULT_MODELS.get(mode)
        if not model or not isinstance(model, str):
            raise bad_request("model is required", code="model_required", param="model")
        body["model"] = model
        return model

    def _meter(self, mode: Mode, model: str, body: dict[str, Any]) -> Meter:
        counter = self._tokenizer.counter(model, approximate=self._approximate)
        if mode == Mode.CHAT:
            messages = body.get("messages")
            if not isinstance(messages, list) or not messages:
                raise bad_request("messages is required", param="messages")
            return TextMeter(counter, counter.messages(messages), self._max_tokens(body))
        if mode in (Mode.COMPLETIONS, Mode.EDITS):
            key = "prompt" if mode == Mode.COMPLETIONS else "instruction"
            if body.get(key) is None:
                raise bad_request(f"{key} is required", param=key)
            return TextMeter(counter, counter.input(body.get(key)), self._max_tokens(body))
        if mode in (Mode.EMBEDDINGS, Mode.MODERATIONS):
            if body.get("input") in (None, "", []):
                raise bad_request("input is required", param="input")
            return TextMeter(counter, counter.input(body["input"]), 0)
        if mode == Mode.IMAGES:
            if not isinstance(body.get("prompt"), str) or not body["prompt"]:
                raise bad_request("prompt is required", param="prompt")
            return ImageMeter(model, body)
        if mode == Mode.SPEECH:
            text = body.get("input")
            if not isinstance(text, str) or not text:
                raise bad_request("input is required", param="input")
            if len(text) > TTS_INPUT_LIMIT:
                raise bad_request(
                    f"input is longer than {TTS_INPUT_LIMIT} characters", param="input"
                )
            return SpeechMeter(text)
        raise bad_request(f"{mode} requests are not relayed as JSON")

    @property
    def _approximate(self) -> bool:
        return self._catalogs.current.options.flag("ApproximateTokenEnabled")

    @staticmethod
    def _max_tokens(body: dict[str, Any]) -> int:
        value = body.get("max_tokens")
        if value is None:
            value = body.get("max_completion_tokens")
        if value is None:
            return 0
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or not 0 <= value < MAX_TOKENS_LIMIT
        ):
            raise bad_request("max_tokens is invalid", param="max_tokens")
        return value

    # --- the relay loop -----------------------------------------------------------------------

    async def _relay(self, job: Job) -> Response:
        caller, model = job.caller, job.model
        caller.model = model
        if not caller.token.allows_model(model):
            raise forbidden(
                f"该令牌无权使用模型：{model} (model not allowed)", code="model_not_allowed"
            )
        await self._limiter.check_rate(caller.token.id, caller.user.id)
        catalog = self._catalogs.current
        group = caller.user.group
        channel = self._first_channel(catalog, caller, group, model)
        ratios = ratios_for(
            catalog.pricing, channel.upstream_model(model), channel.info.type, group
        )
        estimate = job.meter.estimate(ratios, catalog.options.integer("PreConsumedQuota"))
        admission = job.admission = await self._admit(caller, estimate)
        if not self._limiter.enter():
            await self._ledger.cancel(admission)
            self._metrics.rejected.labels("concurrency").inc()
            raise RelayError(
                429, "too many requests in flight, please retry later", code="concurrency_limit"
            )
        try:
            response = await self._attempts(job, catalog, channel)
        except BaseException:
            self._limiter.leave()
            await self._ledger.cancel(admission)
            raise
        # Outside the block above: the books are closed (_finish), whatever happens now.
        await self._confirm(job.recording)  # a stream confirms before its [DONE] instead
        return response

    def _first_channel(
        self, catalog: Catalog, caller: Caller, group: str, model: str
    ) -> ChannelEntry:
        if caller.pinned_channel is not None:
            channel = catalog.channels.get(caller.pinned_channel)
            if channel is None or not channel.enabled:
                raise forbidden(
                    f"channel {caller.pinned_channel} is not available", code="channel_unavailable"
                )
            return channel
        channel = catalog.select(group, model, cooling=self._cooling)
        if channel is None:
            raise RelayError(
                503,
                f"no available channel for model {model} in group {group}",
                type="one_api_error",
                code="model_not_found",
            )
        return channel

    async def _admit(self, caller: Caller, estimate: int) -> Admission:
        token = Account.token(caller.token.id)
        user = Account.user(caller.user.id)
        if not await self._ledger.known(token):
            await self._ledger.observe(token, caller.token.remain_quota, caller.token.used_quota)
        if not await self._ledger.known(user):
            await self._ledger.observe(user, caller.user.quota, caller.user.used_quota)
        try:
            return await self._ledger.admit(
                caller.request_id,
                token=token,
                user=user,
                estimate=estimate,
                token_unlimited=caller.token.unlimited_quota,
            )
        except InsufficientQuotaError as exc:
            self._metrics.rejected.labels(exc.code).inc()
            raise forbidden(exc.message, code=exc.code) from None
        except LedgerError as exc:
            logger.warning("quota ledger unavailable for %s: %r", caller.request_id, exc)
            raise RelayError(
                503, "quota accounting is unavailable, please retry", code="ledger_unavailable"
            ) from None

    async def _attempts(self, job: Job, catalog: Catalog, channel: ChannelEntry) -> Response:
        caller, model = job.caller, job.model
        retries = 0 if caller.pinned_channel is not None else catalog.options.integer("RetryTimes")
        failed: list[int] = []
        last_error: RelayError | None = None
        for attempt_number in range(retries + 1):
            if attempt_number:
                next_channel = catalog.select(
                    caller.user.group,
                    model,
                    exclude=failed,
                    below_priority=channel.priority,
                    cooling=self._cooling,
                )
                if next_channel is None:
                    break
                channel = next_channel
            ratios = ratios_for(
                catalog.pricing, channel.upstream_model(model), channel.info.type, caller.user.group
            )
            if self._tracer is None:
                result = await self._attempt(job, channel, ratios)
            else:
                result = await self._traced_attempt(
                    self._tracer, job, channel, ratios, attempt_number
                )
            if isinstance(result, Response):
                return result
            last_error = result.error
            if not result.retryable:
                break
            failed.append(channel.id)
        assert last_error is not None
        if last_error.status == 429:
            last_error = RelayError(429, SATURATED, type="one_api_error", code=last_error.code)
        raise last_error

    async def _traced_attempt(
        self, tracer: trace.Tracer, job: Job, channel: ChannelEntry, ratios: Ratios, number: int
    ) -> Response | Attempt:
        """`_attempt` inside an upstream span (a child of the request's); a stream's span ends
        with the stream."""
        span = tracer.start_span(
            f"upstream {job.mode}",
            kind=SpanKind.CLIENT,
            attributes={
                "oneapi.request_id": job.caller.request_id,
                "oneapi.channel.id": channel.id,
                "oneapi.channel.name": channel.name,
                "oneapi.channel.type": channel.info.type,
                "gen_ai.request.model": channel.upstream_model(job.model),
                "oneapi.stream": job.stream,
                "oneapi.attempt": number,
            },
        )
        # Not made current: the usage publish stays a child of the request's span.
        try:
            result = await self._attempt(job, channel, ratios, span)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        if isinstance(result, Attempt):
            if result.error is not None:
                _span_error(span, result.error.status, result.error)
            span.set_attribute("oneapi.retryable", result.retryable)
            span.end()
        elif not isinstance(result, EventStreamResponse):
            span.set_attribute("http.response.status_code", result.status_code)
            span.end()
        return result

    async def _attempt(
        self, job: Job, channel: ChannelEntry, ratios: Ratios, span: Span | None = None
    ) -> Response | Attempt:
        caller, mode, model = job.caller, job.mode, job.model
        caller.channel_id = channel.id
        try:
            adaptor = self._adaptors.for_type(channel.info.type)
        except UnsupportedChannelTypeError as exc:
            misconfigured = RelayError(500, str(exc), code="channel_type_unsupported")
            return Attempt(channel, misconfigured, retryable=True)
        if mode not in adaptor.modes:
            error = bad_request(f"channel type {channel.info.type} does not serve {mode} requests")
            return Attempt(channel, error, retryable=True)
        relay_request, prompt_reset = self._upstream_request(job, channel)
        began = time.monotonic()
        try:
            upstream = await adaptor.open(
                self._http, channel.info, relay_request, timeout=self._timeout
            )
        except InvalidRequestError as exc:
            # What the client sent cannot be expressed to this upstream: another channel may.
            return Attempt(channel, bad_request(str(exc)), retryable=caller.pinned_channel is None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = RelayError(
                502 if not isinstance(exc, TimeoutError) else 504,
                f"upstream unreachable: {type(exc).__name__}",
                type="upstream_error",
                code="upstream_unreachable",
            )
            return self._failed(caller, channel, model, error, began)
        self._metrics.first_byte(model, str(channel.id), time.monotonic() - began)
        content_type = upstream.headers.get("content-type", "")
        is_json_on_stream = job.stream and "application/json" in content_type
        if upstream.status not in (200, 201) or is_json_on_stream:
            return await self._upstream_failed(caller, channel, model, adaptor, upstream, began)
        self._cooling.pop(channel.id, None)
        if job.stream:
            return self._stream_response(
                job, relay_request, adaptor, upstream, channel, ratios, began, prompt_reset, span
            )
        try:
            answer = await upstream.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            upstream.release()
            error = RelayError(
                502, f"upstream answer cut: {type(exc).__name__}", code="upstream_cut"
            )
            return self._failed(caller, channel, model, error, began)
        upstream.release()
        if mode == Mode.SPEECH:
            usage = None
            text = ""
            media_type = content_type or "audio/mpeg"
        else:
            try:
                answer, usage = adaptor.read_response(relay_request, answer)
            except UpstreamError as exc:  # an error body that came with a 200
                error = RelayError(exc.status_code, exc.message, type=exc.type, code=exc.code)
                return self._failed(caller, channel, model, error, began, exc)
            if mode in _TRANSCRIPTS:
                text = answer.decode(errors="replace")
            else:  # the generated text matters only when the upstream reported no usage
                text = "" if usage is not None else _answer_text(answer)
            media_type = content_type if mode in _TRANSCRIPTS else "application/json"
        self._outcome(caller, channel, model, True, 200, None, time.monotonic() - began)
        charge = job.meter.charge(ratios, usage, text)
        self._finish(job, channel, ratios, charge, prompt_reset=prompt_reset)
        return Response(
            answer,
            media_type=media_type,
            headers={"X-Oneapi-Request-Id": caller.request_id},
        )

    def _upstream_request(self, job: Job, channel: ChannelEntry) -> tuple[RelayRequest, bool]:
        mode, model, body = job.mode, job.model, job.body
        upstream_model = channel.upstream_model(model)
        changed = upstream_model != model
        prompt_reset = False
        outgoing = body
        if changed:
            outgoing = {**body, "model": upstream_model}
        if mode == Mode.CHAT and channel.system_prompt:
            outgoing = {
                **outgoing,
                "messages": _with_system_prompt(body["messages"], channel.system_prompt),
            }
            prompt_reset = True
            changed = True
        return (
            RelayRequest(
                mode=mode,
                model=upstream_model,
                body=outgoing,
                stream=job.stream,
                raw=None if changed else job.raw,
                files=job.files,
                include_usage=True,
            ),
            prompt_reset,
        )

    async def _upstream_failed(
        self,
        caller: Caller,
        channel: ChannelEntry,
        model: str,
        adaptor: Adaptor,
        upstream: UpstreamResponse,
        began: float,
    ) -> Attempt:
        try:
            answer = await upstream.read()
        except (aiohttp.ClientError, TimeoutError):
            answer = b""
        finally:
            upstream.release()
        status = upstream.status if upstream.status not in (200, 201) else 500
        upstream_error = adaptor.read_error(status, answer)
        error = RelayError(
            upstream_error.status_code or status,
            upstream_error.message,
            type=upstream_error.type,
            code=upstream_error.code,
            param=upstream_error.param,
        )
        return self._failed(caller, channel, model, error, began, upstream_error)

    def _failed(
        self,
        caller: Caller,
        channel: ChannelEntry,
        model: str,
        error: RelayError,
        began: float,
        upstream_error: UpstreamError | None = None,
    ) -> Attempt:
        elapsed = time.monotonic() - began
        self._outcome(caller, channel, model, False, error.status, error, elapsed)
        retryable = caller.pinned_channel is None and error.status != 400 and error.status >= 300
        if error.status == 429 or error.status >= 500:
            self._cooling[channel.id] = time.monotonic() + self._settings.relay_channel_cooldown
        return Attempt(channel, error, retryable)

    def _outcome(
        self,
        caller: Caller,
        channel: ChannelEntry,
        model: str,
        success: bool,
        status: int,
        error: RelayError | None,
        elapsed: float,
    ) -> None:
        self._metrics.upstream_attempt(model, str(channel.id), success, elapsed)
        self._publisher.submit_outcome(
            RelayOutcome(
                request_id=caller.request_id,
                channel_id=channel.id,
                channel_type=channel.info.type,
                model=model,
                success=success,
                status_code=status,
                error_type=error.type if error else "",
                error_code=str(error.code or "") if error else "",
                error_message=error.message if error else "",
                latency_ms=int(elapsed * 1000),
            )
        )

    # --- streaming ----------------------------------------------------------------------------

    def _stream_response(
        self,
        job: Job,
        relay_request: RelayRequest,
        adaptor: Adaptor,
        upstream: UpstreamResponse,
        channel: ChannelEntry,
        ratios: Ratios,
        began: float,
        prompt_reset: bool,
        span: Span | None = None,
    ) -> Response:
        caller, model = job.caller, job.model
        decoder = adaptor.stream_decoder(relay_request)
        options = job.body.get("stream_options")
        client_wants_usage = self._settings.enforce_include_usage or (
            isinstance(options, dict) and bool(options.get("include_usage"))
        )

        async def events() -> AsyncIterator[bytes]:
            completed = False
            recording: asyncio.Task[asyncio.Future[bool] | None] | None = None
            try:
                async for lines in upstream.line_batches():
                    out = [
                        b"data: " + chunk + b"\n\n"
                        for line in lines
                        for chunk in decoder.feed(line)
                        if client_wants_usage or b'"choices":[]' not in chunk
                    ]
                    if out:
                        yield b"".join(out)
                for chunk in decoder.close():
                    if not client_wants_usage and b'"choices":[]' in chunk:
                        continue
                    yield b"data: " + chunk + b"\n\n"
                if decoder.error is not None:
                    failure = RelayError(
                        502, decoder.error.message, type=decoder.error.type, code=decoder.error.code
                    )
                    yield b"data: " + failure.body(caller.request_id) + b"\n\n"
                completed = True
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("upstream stream of %s cut: %r", caller.request_id, exc)
            finally:
                # Also on a client disconnect (cancellation): closing the upstream connection
                # stops generation; what was streamed is still billed.
                upstream.release()
                elapsed = time.monotonic() - began
                self._outcome(
                    caller,
                    channel,
                    model,
                    decoder.error is None,
                    200,
                    None
                    if decoder.error is None
                    else RelayError(502, decoder.error.message, type=decoder.error.type),
                    elapsed,
                )
                charge = job.meter.charge(ratios, decoder.usage, decoder.text)
                if not completed:
                    logger.info(
                        "stream %s ended early; billing what was streamed", caller.request_id
                    )
                recording = self._finish(job, channel, ratios, charge, prompt_reset=prompt_reset)
                if span is not None:
                    span.set_attribute("http.response.status_code", 200)
                    span.set_attribute("oneapi.stream.completed", completed)
                    if decoder.error is not None:
                        span.set_status(Status(StatusCode.ERROR, decoder.error.message[:200]))
                    span.end()
            # Not reached when the client left: nobody is waiting for the end.
            await self._confirm(recording)
            yield b"data: [DONE]\n\n"

        return EventStreamResponse(
            events(),
            headers={
                "X-Oneapi-Request-Id": caller.request_id,
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            },
        )

    # --- accounting ---------------------------------------------------------------------------

    def _finish(
        self, job: Job, channel: ChannelEntry, ratios: Ratios, charge: Charge, *, prompt_reset: bool
    ) -> asyncio.Task[asyncio.Future[bool] | None]:
        """Record the spend; runs as its own task so a client disconnect cannot cancel it.

        The task's result, when not None, turns True once JetStream stored the usage."""
        caller, mode, model, admission = job.caller, job.mode, job.model, job.admitted
        self._limiter.leave()
        upstream_model = channel.upstream_model(model)
        event = UsageEvent(
            request_id=caller.request_id,
            user_id=caller.user.id,
            token_id=caller.token.id,
            token_name=caller.token.name,
            username=caller.user.username,
            channel_id=channel.id,
            channel_type=channel.info.type,
            model=upstream_model,
            origin_model=model,
            group=caller.user.group,
            is_stream=job.stream,
            prompt_tokens=charge.prompt_tokens,
            completion_tokens=charge.completion_tokens,
            cached_tokens=charge.cached_tokens,
            reasoning_tokens=charge.reasoning_tokens,
            model_ratio=ratios.model,
            completion_ratio=ratios.completion,
            group_ratio=ratios.group,
            quota=charge.quota,
            pre_consumed_quota=admission.reserved,
            created_at=int(time.time()),
            elapsed_ms=int((time.monotonic() - caller.started) * 1000),
            mode=USAGE_MODE_NAMES[mode],
            content=ratios.describe(),
            system_prompt_reset=prompt_reset,
        )
        self._metrics.spent(
            upstream_model, charge.prompt_tokens, charge.completion_tokens, charge.quota
        )
        task = asyncio.create_task(self._record(admission, event))
        self._finishing.add(task)
        task.add_done_callback(self._finishing.discard)
        job.recording = task
        return task

    async def _record(self, admission: Admission, event: UsageEvent) -> asyncio.Future[bool] | None:
        try:
            await self._ledger.finish(admission, event.quota)
        except Exception:
            logger.exception("ledger could not record request %s", event.request_id)
        confirm = self._settings.relay_usage_confirm_seconds > 0
        return self._publisher.submit_usage(event, confirm=confirm)

    async def _confirm(self, recording: asyncio.Task[asyncio.Future[bool] | None] | None) -> None:
        """Wait, at most RELAY_USAGE_CONFIRM_SECONDS, until JetStream stored the usage of the
        request being answered: its end then reaches the client only once billing will see it,
        and a relay killed right after answering has lost no billed request. Not waited while
        NATS is away (the publisher answers None): the usage stays buffered, as always."""
        limit = self._settings.relay_usage_confirm_seconds
        if recording is None or limit <= 0:
            return
        try:
            async with asyncio.timeout(limit):
                stored = await asyncio.shield(recording)
                if stored is not None and await asyncio.shield(stored):
                    return
        except TimeoutError:
            pass
        except Exception:
            logger.exception("recording the usage of a request failed")
        self._publisher.unconfirmed.inc()

    async def drain(self) -> None:
        """Wait for the accounting of finished requests (on shutdown)."""
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)


_TRANSCRIPTS = frozenset({Mode.TRANSCRIPTION, Mode.TRANSLATION})


def _span_error(span: Span, status: int, error: RelayError) -> None:
    span.set_attribute("http.response.status_code", status)
    span.set_attribute("error.type", str(error.code or error.type or status))
    span.set_status(Status(StatusCode.ERROR, error.message[:200]))


def _with_system_prompt(messages: list[Any], prompt: str) -> list[Any]:
    """The channel's system prompt replaces a leading system message or goes first."""
    system = {"role": "system", "content": prompt}
    if messages and isinstance(messages[0], dict) and messages[0].get("role") == "system":
        return [system, *messages[1:]]
    return [system, *messages]


def _answer_text(answer: bytes) -> str:
    """The generated text of an OpenAI-format answer (for counting when usage is missing)."""
    try:
        parsed = orjson.loads(answer)
    except orjson.JSONDecodeError:
        return ""
    pieces: list[str] = []
    for choice in parsed.get("choices") or [] if isinstance(parsed, dict) else []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            pieces.append(content)
        text = choice.get("text")
        if isinstance(text, str):
            pieces.append(text)
    return "".join(pieces)
