"""Fake Azure OpenAI (``/openai/deployments/{deployment}/...?api-version=...``).

The OpenAI wire format plus Azure's differences: the ``api-key`` header (or an Entra
``Authorization: Bearer`` token), a required ``api-version`` query parameter, deployments
that name the model, Azure's own error bodies (``{"error": {"code", "message"}}``), and
content filtering: ``prompt_filter_results``/``content_filter_results`` on answers, a first
stream chunk with empty ``choices`` and no model carrying the prompt filter results, the
``content_filter`` 400 error for a blocked prompt and ``finish_reason: content_filter``.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from tests.fakes.core import (
    ErrorKind,
    ErrorSpec,
    Exchange,
    FakeState,
    Generation,
    build_app,
    json_response,
    retry_headers,
    sse,
)
from tests.fakes.openai import OpenAIProvider

API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")

_CATEGORIES = ("hate", "self_harm", "sexual", "violence")

_AZURE_ERRORS: dict[str, tuple[int, str, str]] = {
    "authentication": (
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API "
        "endpoint. Make sure to provide a valid key for an active subscription "
        "and use a correct regional API endpoint for your resource.",
    ),
    "permission": (403, "403", "Access denied due to Virtual Network/Firewall rules."),
    "not_found": (
        404,
        "DeploymentNotFound",
        "The API deployment for this resource does not "
        "exist. If you created the deployment within the last 5 minutes, please wait "
        "a moment and try again.",
    ),
    "rate_limit": (
        429,
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure "
        "OpenAI API version 2024-10-21 have exceeded call rate limit of your current "
        "OpenAI S0 pricing tier. Please retry after {retry} seconds. Please go here: "
        "https://aka.ms/oai/quotaincrease if you would like to further increase the "
        "default rate limit.",
    ),
    "insufficient_quota": (
        429,
        "insufficient_quota",
        "The subscription has run out of quota "
        "for this deployment. Please check your plan and billing details.",
    ),
    "server_error": (
        500,
        "InternalServerError",
        "Backend returned unexpected response. Please contact Microsoft for help.",
    ),
    "unavailable": (
        503,
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
    "overloaded": (
        503,
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
}


def filter_results(*, filtered: bool = False, prompt: bool = False) -> dict[str, Any]:
    """Azure content filter results; ``filtered`` marks violence as filtered (high)."""
    results: dict[str, Any] = {c: {"filtered": False, "severity": "safe"} for c in _CATEGORIES}
    if filtered:
        results["violence"] = {"filtered": True, "severity": "high"}
    if prompt:
        results["jailbreak"] = {"filtered": False, "detected": False}
    else:
        results["protected_material_code"] = {"filtered": False, "detected": False}
        results["protected_material_text"] = {"filtered": False, "detected": False}
    return results


class AzureProvider(OpenAIProvider):
    name: ClassVar[str] = "azure"
    prefix: ClassVar[str] = "/openai/deployments/{deployment}"

    def extract_key(self, request: web.Request) -> str | None:
        return request.headers.get("api-key") or super().extract_key(request)

    def describe(self, request: web.Request, body: Any) -> tuple[str | None, bool]:
        stream = bool(body.get("stream")) if isinstance(body, dict) else False
        return request.match_info.get("deployment"), stream

    # --- errors ------------------------------------------------------------------------------
    def azure_error(
        self, kind: str, message: str | None = None, retry_after: float | None = None
    ) -> tuple[int, dict[str, Any]]:
        status, code, default = _AZURE_ERRORS[kind]
        text = message or default.replace("{retry}", str(round(retry_after or 1)))
        return status, {"error": {"code": code, "message": text}}

    def error_envelope(
        self,
        kind: ErrorKind,
        message: str | None = None,
        *,
        param: str | None = None,
        code: str | None = None,
    ) -> tuple[int, dict[str, Any]]:
        if kind in _AZURE_ERRORS:
            return self.azure_error(kind, message)
        # invalid_request and context_length come from the OpenAI model layer, with a status
        status, body = super().error_envelope(kind, message, param=param, code=code)
        body["error"]["status"] = status
        return status, body

    def error_response(self, spec: ErrorSpec, ex: Exchange) -> web.Response:
        headers = {"apim-request-id": "fake-apim-request", **retry_headers(spec)}
        if spec.kind in _AZURE_ERRORS:
            status, body = self.azure_error(spec.kind, spec.message, spec.retry_after)
            if spec.kind == "rate_limit" and spec.retry_after is None:
                headers["retry-after"] = "1"
        else:
            status, body = self.error_envelope(spec.kind, spec.message)
        return json_response(body, spec.status or status, headers)

    def auth_error(self, problem: Literal["missing", "invalid"], ex: Exchange) -> web.Response:
        return json_response(self.azure_error("authentication")[1], 401)

    def model_missing(self, ex: Exchange) -> web.Response:  # the deployment is in the path
        return json_response(self.azure_error("not_found")[1], 404)

    def model_not_found(self, model: str) -> web.Response:
        return json_response(self.azure_error("not_found")[1], 404)

    def prompt_filtered(self, ex: Exchange) -> web.Response:
        return json_response(
            {
                "error": {
                    "message": (
                        "The response was filtered due to the prompt triggering Azure OpenAI's "
                        "content management policy. Please modify your prompt and retry. To "
                        "learn more about our content filtering policies please read our "
                        "documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
                    ),
                    "type": None,
                    "param": "prompt",
                    "code": "content_filter",
                    "status": 400,
                    "innererror": {
                        "code": "ResponsibleAIPolicyViolation",
                        "content_filter_result": filter_results(filtered=True, prompt=True),
                    },
                }
            },
            400,
        )

    # --- deployments -------------------------------------------------------------------------
    def request_model(self, request: web.Request, body: dict[str, Any]) -> str | None:
        return request.match_info.get("deployment")

    def model_allowed(self, state: FakeState, model: str) -> bool:
        return state.deployments is None or model in state.deployments

    def response_model(self, model: str, state: FakeState) -> str:
        return (state.deployments or {}).get(model, model)

    # --- content filter annotations ----------------------------------------------------------
    def decorate_chat_body(self, body: dict[str, Any], gen: Generation) -> None:
        body["prompt_filter_results"] = [
            {"prompt_index": 0, "content_filter_results": filter_results(prompt=True)}
        ]

    def preamble_frames(self) -> list[bytes]:
        return [
            sse(
                {
                    "choices": [],
                    "created": 0,
                    "id": "",
                    "model": "",
                    "object": "",
                    "prompt_filter_results": [
                        {"prompt_index": 0, "content_filter_results": filter_results(prompt=True)}
                    ],
                }
            )
        ]

    def decorate_final_choice(self, choice: dict[str, Any], gen: Generation) -> None:
        choice["content_filter_results"] = filter_results(filtered=gen.finish == "content_filter")

    # --- routes ------------------------------------------------------------------------------
    def add_routes(self, app: web.Application) -> None:
        p = self.prefix
        r = app.router
        for path, handler in (
            ("/chat/completions", self.chat_completions),
            ("/completions", self.completions),
            ("/embeddings", self.embeddings),
            ("/images/generations", self.images),
            ("/audio/speech", self.speech),
            ("/audio/transcriptions", self.transcriptions),
            ("/audio/translations", self.translations),
        ):
            r.add_post(p + path, self.versioned(handler))
        r.add_route("*", "/{tail:.*}", self.unknown_path)

    def versioned(self, handler: Handler) -> Handler:
        """Wrap ``handler`` with Azure's api-version check."""

        async def check(request: web.Request) -> web.StreamResponse:
            version = request.query.get("api-version")
            if not version:
                return json_response(
                    {"error": {"code": "404", "message": "Resource not found"}}, 404
                )
            if not API_VERSION.match(version):
                return json_response(
                    {"error": {"code": "BadRequest", "message": "API version not supported"}}, 400
                )
            return await handler(request)

        return check

    async def unknown_path(self, request: web.Request) -> web.Response:
        return json_response({"error": {"code": "404", "message": "Resource not found"}}, 404)


def create_app(state: FakeState | None = None, **options: Any) -> web.Application:
    """The fake Azure OpenAI application; ``options`` go to ``FakeState``."""
    return build_app(AzureProvider(), state or FakeState("azure", **options))
