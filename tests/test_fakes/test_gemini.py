"""The fake Gemini API against the documented REST shapes."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from tests.fakes import (
    FakeUpstream,
    content_filtered,
    error,
    keepalive,
    mid_stream_error,
    reply,
)

KEY = {"x-goog-api-key": "gemini-key"}
FUNCTIONS: Any = [
    {
        "functionDeclarations": [
            {
                "name": "get_weather",
                "description": "Weather in a city",
                "parameters": {
                    "type": "OBJECT",
                    "properties": {"city": {"type": "STRING"}},
                    "required": ["city"],
                },
            }
        ]
    }
]


async def post(fake: FakeUpstream, path: str, body: Any, **kwargs: Any) -> tuple[int, str, bytes]:
    kwargs.setdefault("headers", KEY)
    async with (
        aiohttp.ClientSession() as http,
        http.post(fake.url + path, json=body, **kwargs) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.read()


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


async def test_generate_content(gemini_fake: FakeUpstream) -> None:
    status, _, raw = await post(
        gemini_fake,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {
            "systemInstruction": {"parts": [{"text": "be kind"}]},
            "contents": [
                user("first turn"),
                {"role": "model", "parts": [{"text": "ok"}]},
                user("hello gemini world"),
            ],
        },
    )
    assert status == 200
    body = json.loads(raw)
    candidate = body["candidates"][0]
    assert candidate["content"] == {"parts": [{"text": "hello gemini world"}], "role": "model"}
    assert candidate["finishReason"] == "STOP"
    assert body["usageMetadata"]["promptTokenCount"] == 2 + 2 + 1 + 3
    assert body["usageMetadata"]["candidatesTokenCount"] == 3
    assert body["usageMetadata"]["totalTokenCount"] == 11
    assert "thoughtsTokenCount" not in body["usageMetadata"]
    assert body["modelVersion"] == "gemini-2.5-flash"
    assert gemini_fake.last_request.json["systemInstruction"]["parts"][0]["text"] == "be kind"


async def test_thoughts_tokens(gemini_fake: FakeUpstream) -> None:
    gemini_fake.push(reply("answer", reasoning_tokens=5))
    _, _, raw = await post(
        gemini_fake,
        "/v1beta/models/gemini-2.5-pro:generateContent",
        {
            "contents": [user("why")],
            "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
        },
    )
    body = json.loads(raw)
    parts = body["candidates"][0]["content"]["parts"]
    assert parts[0]["thought"] is True
    assert parts[1] == {"text": "answer"}
    usage = body["usageMetadata"]
    assert usage["thoughtsTokenCount"] == 5
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + 1 + 5


async def test_stream_sse(gemini_fake: FakeUpstream) -> None:
    status, content_type, raw = await post(
        gemini_fake,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        {"contents": [user("one two three")]},
    )
    assert status == 200
    assert content_type.startswith("text/event-stream")
    frames = raw.split(b"\r\n\r\n")
    assert frames[-1] == b""
    chunks = [json.loads(f.removeprefix(b"data: ")) for f in frames[:-1]]
    text = "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks)
    assert text == "one two three"
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
    # usage is cumulative in every chunk, not a delta
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in chunks] == [1, 2, 3]
    assert b"[DONE]" not in raw


async def test_stream_json_array_without_alt(gemini_fake: FakeUpstream) -> None:
    _, content_type, raw = await post(
        gemini_fake,
        "/v1/models/gemini-2.0-flash:streamGenerateContent",
        {"contents": [user("a b")]},
    )
    assert content_type.startswith("application/json")
    chunks = json.loads(raw)
    assert len(chunks) == 2
    assert chunks[-1]["usageMetadata"]["totalTokenCount"] == 4


async def test_function_call(gemini_fake: FakeUpstream) -> None:
    _, _, raw = await post(
        gemini_fake,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {
            "contents": [user("weather")],
            "tools": FUNCTIONS,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
        },
    )
    candidate = json.loads(raw)["candidates"][0]
    assert candidate["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "fake"}}}
    ]
    assert candidate["finishReason"] == "STOP"
    _, _, raw = await post(
        gemini_fake,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        {
            "contents": [
                user("call tool"),
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "get_weather", "response": {"sky": "blue"}}}
                    ],
                },
            ],
            "tools": FUNCTIONS,
        },
    )
    parts = json.loads(raw)["candidates"][0]["content"]["parts"]
    assert parts == [{"text": '{"sky": "blue"}'}]


async def test_safety_blocks(gemini_fake: FakeUpstream) -> None:
    gemini_fake.push(content_filtered("prompt"), content_filtered("output"))
    path = "/v1beta/models/gemini-2.5-flash:generateContent"
    _, _, raw = await post(gemini_fake, path, {"contents": [user("bad")]})
    blocked = json.loads(raw)
    assert "candidates" not in blocked
    assert blocked["promptFeedback"]["blockReason"] == "SAFETY"
    _, _, raw = await post(gemini_fake, path, {"contents": [user("bad")]})
    candidate = json.loads(raw)["candidates"][0]
    assert candidate["finishReason"] == "SAFETY"
    assert "content" not in candidate
    assert any(r.get("blocked") for r in candidate["safetyRatings"])


async def test_max_output_tokens(gemini_fake: FakeUpstream) -> None:
    _, _, raw = await post(
        gemini_fake,
        "/v1beta/models/g:generateContent",
        {
            "contents": [user("a b c")],
            "generationConfig": {"maxOutputTokens": 1},
        },
    )
    candidate = json.loads(raw)["candidates"][0]
    assert candidate["finishReason"] == "MAX_TOKENS"
    assert candidate["content"]["parts"] == [{"text": "a"}]


async def test_embeddings(gemini_fake: FakeUpstream) -> None:
    _, _, raw = await post(
        gemini_fake,
        "/v1beta/models/text-embedding-004:embedContent",
        {
            "content": {"parts": [{"text": "hello"}]},
            "outputDimensionality": 8,
        },
    )
    assert len(json.loads(raw)["embedding"]["values"]) == 8
    _, _, raw = await post(
        gemini_fake,
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        {
            "requests": [
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
                {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}},
            ]
        },
    )
    embeddings = json.loads(raw)["embeddings"]
    assert len(embeddings) == 2
    assert embeddings[0]["values"] != embeddings[1]["values"]


async def test_key_in_query_or_header() -> None:
    async with FakeUpstream("gemini", keys=["good"]) as fake:
        path = "/v1beta/models/g:generateContent"
        body = {"contents": [user("x")]}
        status, _, _ = await post(fake, path + "?key=good", body, headers={})
        assert status == 200
        assert fake.last_request.key == "good"
        status, _, raw = await post(fake, path, body, headers={"x-goog-api-key": "bad"})
        assert status == 400
        bad = json.loads(raw)["error"]
        assert bad["status"] == "INVALID_ARGUMENT"
        assert bad["details"][0]["reason"] == "API_KEY_INVALID"
        status, _, raw = await post(fake, path, body, headers={})
        assert status == 403
        assert json.loads(raw)["error"]["status"] == "PERMISSION_DENIED"


async def test_error_envelopes(gemini_fake: FakeUpstream) -> None:
    path = "/v1beta/models/g:generateContent"
    gemini_fake.push(error("rate_limit", retry_after=12), error("overloaded"))
    status, _, raw = await post(gemini_fake, path, {"contents": [user("x")]})
    assert status == 429
    limited = json.loads(raw)["error"]
    assert (limited["code"], limited["status"]) == (429, "RESOURCE_EXHAUSTED")
    assert limited["details"][-1] == {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "12s",
    }
    status, _, raw = await post(gemini_fake, path, {"contents": [user("x")]})
    assert (status, json.loads(raw)["error"]["status"]) == (503, "UNAVAILABLE")
    status, _, raw = await post(
        gemini_fake, path, {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}
    )
    assert status == 400
    assert json.loads(raw)["error"]["message"] == "Please use a valid role: user, model."
    status, _, raw = await post(gemini_fake, path, {"contents": []})
    assert status == 400


async def test_models_list(gemini_fake: FakeUpstream) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.get(gemini_fake.url + "/v1beta/models", headers=KEY) as resp,
    ):
        models = (await resp.json())["models"]
    assert models[0]["name"].startswith("models/")
    assert "generateContent" in models[0]["supportedGenerationMethods"]


async def test_stream_error_frame_and_keepalive(gemini_fake: FakeUpstream) -> None:
    gemini_fake.push(mid_stream_error(after=1, kind="overloaded") | keepalive(1))
    _, _, raw = await post(
        gemini_fake,
        "/v1beta/models/g:streamGenerateContent?alt=sse",
        {"contents": [user("a b c")]},
    )
    assert raw.startswith(b": keep-alive\n\ndata: ")
    frames = raw.removeprefix(b": keep-alive\n\n").split(b"\r\n\r\n")
    assert json.loads(frames[0].removeprefix(b"data: "))["candidates"][0]["content"]["parts"] == [
        {"text": "a"}
    ]
    assert json.loads(frames[1].removeprefix(b"data: "))["error"]["status"] == "UNAVAILABLE"
    assert frames[2:] == [b""]
