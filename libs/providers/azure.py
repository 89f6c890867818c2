"""Azure OpenAI: the OpenAI wire format behind deployments, api-version and an `api-key`.

URL: `{base}/openai/deployments/{deployment}{rest}?api-version={version}` where `{rest}` is
the OpenAI path without `/v1` and the deployment is the (mapped) model name with its dots
removed, as One API does (`gpt-3.5-turbo` -> `gpt-35-turbo`); image generation uses the model
name as it is. Behind a Cloudflare AI Gateway the `/openai/deployments` segment is left out.
The API version comes from the channel's config (`api_version`), else its `other` field
(One API's older place for it), else `DEFAULT_API_VERSION`.

Answers are OpenAI's plus content-filter annotations: the stream's first chunk has empty
`choices` and the prompt filter results (dropped, like any chunk with neither choices nor
usage); a blocked prompt is a 400 with code `content_filter`.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import quote

from libs.providers.base import (
    Adaptor,
    ChannelInfo,
    Mode,
    RelayRequest,
    StreamDecoder,
    UpstreamError,
    UpstreamRequest,
    Usage,
)
from libs.providers.errors import InvalidRequestError, UnsupportedModeError, error_from_body
from libs.providers.openai import (
    MODE_PATHS,
    OpenAIAdaptor,
    OpenAIStreamDecoder,
    describe_request,
    read_openai_response,
)

__all__ = ["DEFAULT_API_VERSION", "AzureAdaptor", "azure_deployment"]

#: The API version used when the channel names none (Azure's GA version of 2024-10-21).
DEFAULT_API_VERSION: Final = "2024-10-21"

_CLOUDFLARE_GATEWAY: Final = "https://gateway.ai.cloudflare.com"

#: Azure error codes that mean what OpenAI says with an error type.
_TYPE_BY_CODE: Final = {
    "content_filter": "invalid_request_error",
    "insufficient_quota": "insufficient_quota",
    "DeploymentNotFound": "invalid_request_error",
}


def azure_deployment(model: str, mode: Mode) -> str:
    """The deployment a model is served by: One API's rule, the name without dots."""
    return model if mode is Mode.IMAGES else model.replace(".", "")


def api_version(channel: ChannelInfo) -> str:
    """The channel's API version: config `api_version`, else `other`, else the default."""
    configured = channel.config.get("api_version")
    if isinstance(configured, str) and configured.strip():
        return configured.strip()
    return channel.other.strip() or DEFAULT_API_VERSION


class AzureAdaptor(Adaptor):
    """Azure OpenAI channels (type 3)."""

    modes = frozenset(
        {
            Mode.CHAT,
            Mode.COMPLETIONS,
            Mode.EMBEDDINGS,
            Mode.IMAGES,
            Mode.SPEECH,
            Mode.TRANSCRIPTION,
            Mode.TRANSLATION,
        }
    )

    def build_request(self, channel: ChannelInfo, request: RelayRequest) -> UpstreamRequest:
        if request.mode not in self.modes:
            raise UnsupportedModeError(f"Azure OpenAI does not serve {request.mode.value}")
        base = channel.base_url.rstrip("/")
        if not base:
            raise InvalidRequestError("an Azure channel needs its endpoint as base URL")
        deployment = quote(azure_deployment(request.model, request.mode), safe="")
        rest = MODE_PATHS[request.mode].removeprefix("/v1")
        version = quote(api_version(channel), safe="")
        if base.startswith(_CLOUDFLARE_GATEWAY):
            url = f"{base}/{deployment}{rest}?api-version={version}"
        else:
            url = f"{base}/openai/deployments/{deployment}{rest}?api-version={version}"
        return describe_request(url, {"api-key": channel.key}, request)

    def read_response(self, request: RelayRequest, body: bytes) -> tuple[bytes, Usage | None]:
        return read_openai_response(request, body)

    def stream_decoder(self, request: RelayRequest) -> StreamDecoder:
        return OpenAIStreamDecoder(request.mode)

    def read_error(self, status: int, body: bytes) -> UpstreamError:
        """Azure's `{"error": {"code", "message"}}`, typed the way OpenAI types the same error."""
        error = error_from_body(status, body)
        if error.type == "upstream_error" and isinstance(error.code, str):
            error.type = _TYPE_BY_CODE.get(error.code, error.type)
        return error

    def default_models(self) -> tuple[str, ...]:
        return OpenAIAdaptor().default_models()
