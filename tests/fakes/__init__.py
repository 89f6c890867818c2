"""Fake upstream LLM providers: the only fakes the tests may use.

Small in-repo HTTP servers (aiohttp) speaking each provider's documented wire format, with
scripted errors, slow and cut streams, keep-alives and usage quirks, and a record of every
request. One module per provider: ``openai``, ``azure``, ``anthropic``, ``gemini``, ``ollama``
(each has ``create_app(state=None, **options)``).

Usage::

    async with FakeUpstream("openai") as fake:        # or: with FakeUpstream(...) (thread)
        fake.push(error("rate_limit", retry_after=2))  # next request: 429
        client = AsyncOpenAI(base_url=fake.base_url, api_key="sk-test")
        ...
        assert fake.last_request.json["stream_options"] == {"include_usage": True}

Replies and tokens (all providers): the reply echoes the last user message (tool results
count as user messages), or ``Hello from <model>`` when it has no text; a scripted
``reply(text)`` replaces it. A token is a whitespace-separated word: prompt tokens = words
of every text in the request (system prompt, messages, tool results; images count 0);
completion tokens = pieces streamed = words of the reply (cut to the request's max tokens,
finish reason "length"), or for a tool call 1 (the name) + the words of the JSON arguments
(``json.dumps`` default separators). Reasoning tokens are only what a script sets.
"""

from tests.fakes.core import (
    ERROR_KINDS,
    NORMAL,
    TOOL_TRIGGER,
    Billing,
    ErrorKind,
    ErrorSpec,
    FakeError,
    FakeStartError,
    FakeState,
    Outcome,
    RecordedRequest,
    Rule,
    ToolCallSpec,
    content_filtered,
    count_words,
    dropped,
    embedding_vector,
    error,
    keepalive,
    mid_stream_error,
    no_usage,
    reply,
    slow,
    tool_call,
)
from tests.fakes.runner import PROVIDERS, FakeProcess, FakeUpstream, create_app

__all__ = [
    "ERROR_KINDS",
    "NORMAL",
    "PROVIDERS",
    "TOOL_TRIGGER",
    "Billing",
    "ErrorKind",
    "ErrorSpec",
    "FakeError",
    "FakeProcess",
    "FakeStartError",
    "FakeState",
    "FakeUpstream",
    "Outcome",
    "RecordedRequest",
    "Rule",
    "ToolCallSpec",
    "content_filtered",
    "count_words",
    "create_app",
    "dropped",
    "embedding_vector",
    "error",
    "keepalive",
    "mid_stream_error",
    "no_usage",
    "reply",
    "slow",
    "tool_call",
]
