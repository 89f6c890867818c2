"""The fake Azure OpenAI as ``openai.AzureOpenAI`` sees it."""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import openai
import pytest

from tests.fakes import FakeUpstream, content_filtered, error

API_VERSION = "2024-10-21"


@pytest.fixture
def azure_fake() -> Iterator[FakeUpstream]:
    with FakeUpstream("azure", deployments={"chat-dep": "gpt-4o-2024-08-06"}) as fake:
        yield fake


def client(fake: FakeUpstream, key: str = "azure-key") -> openai.AzureOpenAI:
    return openai.AzureOpenAI(
        azure_endpoint=fake.url, api_key=key, api_version=API_VERSION, max_retries=0
    )


def test_chat_through_a_deployment(azure_fake: FakeUpstream) -> None:
    result = client(azure_fake).chat.completions.create(
        model="chat-dep", messages=[{"role": "user", "content": "hello azure"}]
    )
    assert result.model == "gpt-4o-2024-08-06"
    assert result.choices[0].message.content == "hello azure"
    assert result.usage is not None
    assert result.usage.total_tokens == 4
    extra = result.model_extra or {}
    filters = extra["prompt_filter_results"][0]["content_filter_results"]
    assert filters["hate"] == {"filtered": False, "severity": "safe"}
    choice_extra = result.choices[0].model_extra or {}
    assert choice_extra["content_filter_results"]["violence"]["filtered"] is False
    sent = azure_fake.last_request
    assert sent.path == "/openai/deployments/chat-dep/chat/completions"
    assert sent.query == {"api-version": API_VERSION}
    assert sent.headers["api-key"] == "azure-key"


def test_stream_starts_with_prompt_filter_chunk(azure_fake: FakeUpstream) -> None:
    stream = client(azure_fake).chat.completions.create(
        model="chat-dep",
        messages=[{"role": "user", "content": "streamed azure reply"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    first = chunks[0]
    assert first.choices == []
    assert first.model == ""
    assert "prompt_filter_results" in (first.model_extra or {})
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "streamed azure reply"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3


def test_embeddings_through_a_deployment(azure_fake: FakeUpstream) -> None:
    result = client(azure_fake).embeddings.create(model="chat-dep", input="two words")
    assert len(result.data[0].embedding) == 16
    assert result.usage.prompt_tokens == 2


def test_errors_in_azure_shape(azure_fake: FakeUpstream) -> None:
    api = client(azure_fake)
    with pytest.raises(openai.NotFoundError) as missing:
        api.chat.completions.create(model="other", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "DeploymentNotFound"
    azure_fake.push(error("rate_limit", retry_after=3))
    with pytest.raises(openai.RateLimitError) as limited:
        api.chat.completions.create(model="chat-dep", messages=[{"role": "user", "content": "x"}])
    assert limited.value.code == "429"
    assert "retry after 3 seconds" in limited.value.message
    assert limited.value.response.headers["retry-after"] == "3"
    azure_fake.push(content_filtered("prompt"))
    with pytest.raises(openai.BadRequestError) as blocked:
        api.chat.completions.create(model="chat-dep", messages=[{"role": "user", "content": "x"}])
    assert blocked.value.code == "content_filter"
    assert isinstance(blocked.value.body, dict)
    assert blocked.value.body["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_output_filter_finish_reason(azure_fake: FakeUpstream) -> None:
    azure_fake.push(content_filtered("output"))
    result = client(azure_fake).chat.completions.create(
        model="chat-dep", messages=[{"role": "user", "content": "x"}]
    )
    assert result.choices[0].finish_reason == "content_filter"
    extra = result.choices[0].model_extra or {}
    assert extra["content_filter_results"]["violence"] == {"filtered": True, "severity": "high"}


async def test_key_and_api_version_checks() -> None:
    async with (
        FakeUpstream("azure", keys=["right"]) as fake,
        aiohttp.ClientSession() as http,
    ):
        url = fake.url + "/openai/deployments/d/chat/completions"
        body = {"messages": [{"role": "user", "content": "x"}]}
        async with http.post(
            url, json=body, params={"api-version": API_VERSION}, headers={"api-key": "wrong"}
        ) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "401"
        async with http.post(url, json=body, headers={"api-key": "right"}) as resp:
            assert resp.status == 404
            assert await resp.json() == {"error": {"code": "404", "message": "Resource not found"}}
        async with http.post(
            url, json=body, params={"api-version": "latest"}, headers={"api-key": "right"}
        ) as resp:
            assert resp.status == 400
        async with http.post(
            url,
            json=body,
            params={"api-version": API_VERSION},
            headers={"Authorization": "Bearer right"},
        ) as resp:
            assert resp.status == 200
            assert (await resp.json())["model"] == "d"
