"""The fake Ollama API against the documented shapes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.fakes import FakeUpstream, mid_stream_error, no_usage


async def call(
    fake: FakeUpstream,
    path: str,
    body: Any = None,
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, fake.url + path, json=body, headers=headers) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def lines(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines()]


async def test_chat_streams_ndjson_by_default(ollama_fake: FakeUpstream) -> None:
    status, content_type, raw = await call(
        ollama_fake,
        "/api/chat",
        {
            "model": "llama3.2",
            "messages": [
                {"role": "system", "content": "be short"},
                {"role": "user", "content": "why is the sky blue"},
            ],
        },
    )
    assert status == 200
    assert content_type.startswith("application/x-ndjson")
    objects = lines(raw)
    assert all(o["model"] == "llama3.2" and o["created_at"].endswith("Z") for o in objects)
    assert [o["done"] for o in objects] == [False] * 5 + [True]
    assert "".join(o["message"]["content"] for o in objects) == "why is the sky blue"
    final = objects[-1]
    assert final["done_reason"] == "stop"
    assert (final["prompt_eval_count"], final["eval_count"]) == (2 + 5, 5)
    assert final["eval_duration"] == 5 * 10_000_000
    assert final["total_duration"] == (
        final["load_duration"] + final["prompt_eval_duration"] + final["eval_duration"]
    )


async def test_chat_non_stream_and_num_predict(ollama_fake: FakeUpstream) -> None:
    _, content_type, raw = await call(
        ollama_fake,
        "/api/chat",
        {
            "model": "llama3.2",
            "stream": False,
            "options": {"num_predict": 2},
            "messages": [{"role": "user", "content": "a b c d"}],
        },
    )
    assert content_type.startswith("application/json")
    body = json.loads(raw)
    assert body["message"] == {"role": "assistant", "content": "a b"}
    assert body["done"] is True
    assert body["done_reason"] == "length"
    assert body["eval_count"] == 2


async def test_tool_calls(ollama_fake: FakeUpstream) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    _, _, raw = await call(
        ollama_fake,
        "/api/chat",
        {
            "model": "llama3.2",
            "stream": False,
            "tools": tools,
            "messages": [{"role": "user", "content": "please call tool"}],
        },
    )
    message = json.loads(raw)["message"]
    assert message["content"] == ""
    assert message["tool_calls"] == [
        {"function": {"name": "get_weather", "arguments": {"city": "fake"}}}
    ]
    _, _, raw = await call(
        ollama_fake,
        "/api/chat",
        {
            "model": "llama3.2",
            "tools": tools,
            "messages": [{"role": "user", "content": "please call tool"}],
        },
    )
    assert lines(raw)[0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"


async def test_usage_omitted_and_mid_stream_error(ollama_fake: FakeUpstream) -> None:
    ollama_fake.push(no_usage(), mid_stream_error(after=1, message="runner crashed"))
    _, _, raw = await call(
        ollama_fake,
        "/api/chat",
        {"model": "m", "stream": False, "messages": [{"role": "user", "content": "x"}]},
    )
    body = json.loads(raw)
    assert "prompt_eval_count" not in body
    assert "eval_count" not in body
    _, _, raw = await call(
        ollama_fake, "/api/chat", {"model": "m", "messages": [{"role": "user", "content": "a b c"}]}
    )
    objects = lines(raw)
    assert objects[0]["message"]["content"] == "a"
    assert objects[-1] == {"error": "runner crashed"}


async def test_embed_and_tags(ollama_fake: FakeUpstream) -> None:
    _, _, raw = await call(
        ollama_fake, "/api/embed", {"model": "nomic-embed-text", "input": ["a b", "c"]}
    )
    body = json.loads(raw)
    assert len(body["embeddings"]) == 2
    assert len(body["embeddings"][0]) == 16
    assert body["prompt_eval_count"] == 3
    _, _, raw = await call(
        ollama_fake, "/api/embeddings", {"model": "nomic-embed-text", "prompt": "a b"}
    )
    assert json.loads(raw)["embedding"] == body["embeddings"][0]
    _, _, raw = await call(ollama_fake, "/api/tags", method="GET")
    model = json.loads(raw)["models"][0]
    assert model["name"] == "llama3.2:latest"
    assert len(model["digest"]) == 64
    assert model["details"]["format"] == "gguf"


async def test_errors() -> None:
    async with FakeUpstream("ollama", models=["llama3.2"]) as fake:
        status, _, raw = await call(
            fake,
            "/api/chat",
            {
                "model": "llama3.2:latest",
                "stream": False,
                "messages": [{"role": "user", "content": "x"}],
            },
        )
        assert status == 200
        status, _, raw = await call(
            fake, "/api/chat", {"model": "mistral", "messages": [{"role": "user", "content": "x"}]}
        )
        assert status == 404
        assert json.loads(raw) == {"error": 'model "mistral" not found, try pulling it first'}
        status, _, raw = await call(fake, "/api/chat", {"messages": []})
        assert (status, json.loads(raw)) == (400, {"error": "model is required"})
        status, content_type, raw = await call(fake, "/api/nothing", method="GET")
        assert (status, raw) == (404, b"404 page not found")
        assert content_type.startswith("text/plain")


async def test_keys_only_when_configured() -> None:
    async with FakeUpstream("ollama", keys=["secret"]) as fake:
        status, _, raw = await call(fake, "/api/tags", method="GET")
        assert (status, json.loads(raw)) == (401, {"error": "unauthorized"})
        status, _, _ = await call(
            fake, "/api/tags", method="GET", headers={"Authorization": "Bearer secret"}
        )
        assert status == 200
