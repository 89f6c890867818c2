"""Fixtures for the fakes' own tests: one fake per test, in the test's loop or in a thread."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes import FakeUpstream


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("openai") as fake:
        yield fake


@pytest.fixture
def openai_fake_thread() -> Iterator[FakeUpstream]:
    with FakeUpstream("openai") as fake:
        yield fake


@pytest.fixture
async def anthropic_fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("anthropic") as fake:
        yield fake


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("gemini") as fake:
        yield fake


@pytest.fixture
async def ollama_fake() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream("ollama") as fake:
        yield fake
