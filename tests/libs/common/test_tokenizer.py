"""Offline token counting: encodings, One API's message rules, images, the cache folder."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
import tiktoken

from libs.common.settings import load_settings
from libs.common.tokenizer import (
    ASSUMED_IMAGE_SIZE,
    CL100K_BASE,
    O200K_BASE,
    EncodingLoader,
    EncodingUnavailableError,
    TokenCounter,
    Tokenizer,
    count_approx,
    data_url_image_size,
    encoding_name_for_model,
    high_detail_tokens,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"


def tiktoken_cache_key(name: str) -> str:
    """The file name tiktoken (and tiktoken-go) give an encoding in their cache folder."""
    return hashlib.sha1(BLOB.format(name).encode()).hexdigest()  # noqa: S324


# One tokenizer for the module, as a process holds one; packaged encodings, no cache folder.
SHARED = Tokenizer()


def count_text(text: str, model: str, *, approximate: bool = False) -> int:
    return SHARED.count_text(text, model, approximate=approximate)


def count_input(value: object, model: str, *, approximate: bool = False) -> int:
    return SHARED.count_input(value, model, approximate=approximate)


def count_messages(messages: Any, model: str, **options: Any) -> int:
    return SHARED.count_messages(messages, model, **options)


def stream_counter(model: str, *, approximate: bool = False) -> Any:
    return SHARED.counter(model, approximate=approximate).stream()


@pytest.fixture
def no_cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIKTOKEN_CACHE_DIR", raising=False)
    monkeypatch.delenv("DATA_GYM_CACHE_DIR", raising=False)


# --- images, built here so their sizes are known ------------------------------------------------


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = (b"\x00" + bytes(width)) * height  # 8-bit grey, filter 0
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int, metadata: int = 0) -> bytes:
    """JPEG markers up to the frame header, after `metadata` bytes of APP segments."""
    out = (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    )
    while metadata > 0:
        size = min(metadata, 60000)
        out += b"\xff\xe1" + struct.pack(">H", size + 2) + bytes(size)
        metadata -= size
    frame = struct.pack(">BHHB", 8, height, width, 3) + bytes(9)
    return out + b"\xff\xc0" + struct.pack(">H", len(frame) + 2) + frame + b"\xff\xd9"


def gif(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00;"


def webp(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + bytes(4)
    body += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def image_message(url: str, detail: str | None = None, text: str | None = None) -> dict[str, Any]:
    image: dict[str, Any] = {"url": url}
    if detail is not None:
        image["detail"] = detail
    parts: list[dict[str, Any]] = [{"type": "image_url", "image_url": image}]
    if text is not None:
        parts.insert(0, {"type": "text", "text": text})
    return {"role": "user", "content": parts}


# --- encodings ----------------------------------------------------------------------------------


def test_known_counts_in_both_encodings() -> None:
    assert count_text("hello world", "gpt-3.5-turbo") == 2
    assert count_text("hello world", "gpt-4o") == 2
    assert count_text("", "gpt-4") == 0
    tokenizer = SHARED
    # OpenAI cookbook, "How to count tokens with tiktoken"
    assert tokenizer.encoding_for("gpt-4").encode_ordinary("tiktoken is great!") == [
        83,
        1609,
        5963,
        374,
        2294,
        0,
    ]
    assert tokenizer.encoding_for("gpt-4o").encode_ordinary("tiktoken is great!") == [
        83,
        8251,
        2488,
        382,
        2212,
        0,
    ]


def test_special_tokens_in_user_text_are_plain_text() -> None:
    assert count_text("<|endoftext|>", "gpt-4") > 1
    assert count_text("<|endoftext|>", "gpt-4o") > 1


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4o-2024-08-06",
        "chatgpt-4o-latest",
        "o1",
        "o1-mini",
        "o3",
        "o3-mini-2025-01-31",
        "o4-mini",
        "gpt-4.1",
        "gpt-4.1-nano",
        "gpt-4.5-preview",
        "gpt-5",
        "gpt-5-mini",
        "openai/gpt-4o",
        "ft:gpt-4o-mini:acme::abc123",
    ],
)
def test_o200k_models(model: str) -> None:
    assert encoding_name_for_model(model) == O200K_BASE


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4",
        "gpt-4-turbo",
        "gpt-4-32k",
        "gpt-3.5-turbo",
        "text-embedding-3-small",
        "claude-3-opus-20240229",
        "gemini-1.5-pro",
        "o10-custom",
        "omni-moderation",
        "",
    ],
)
def test_cl100k_models(model: str) -> None:
    assert encoding_name_for_model(model) == CL100K_BASE


def test_unknown_encoding_is_a_clear_error() -> None:
    with pytest.raises(EncodingUnavailableError, match="unknown encoding 'p50k_base'"):
        EncodingLoader().get("p50k_base")


# --- One API's message counting -----------------------------------------------------------------

COOKBOOK_MESSAGES: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # prompt_tokens the OpenAI API reported for these messages (OpenAI cookbook)
        ("gpt-3.5-turbo-0301", 127),
        ("gpt-3.5-turbo-0613", 129),
        ("gpt-4", 129),
        ("gpt-4o", 124),
        ("gpt-4o-mini", 124),
    ],
)
def test_cookbook_messages(model: str, expected: int) -> None:
    assert count_messages(COOKBOOK_MESSAGES, model) == expected


def test_message_overheads() -> None:
    hello = count_text("Hello!", "gpt-4")
    user = count_text("user", "gpt-4")
    bob = count_text("bob", "gpt-4")
    assert count_messages([], "gpt-4") == 3
    assert count_messages([{"role": "user", "content": "Hello!"}], "gpt-4") == 3 + hello + user + 3
    named = [{"role": "user", "content": "Hello!", "name": "bob"}]
    assert count_messages(named, "gpt-4") == 3 + hello + user + 1 + bob + 3
    # gpt-3.5-turbo-0301: 4 per message and the name replaces the role
    assert count_messages(named, "gpt-3.5-turbo-0301") == 4 + hello + user - 1 + bob + 3
    # a null name is no name; null content is no content
    assert count_messages([{"role": "user", "content": None, "name": None}], "gpt-4") == (
        3 + user + 3
    )


def test_text_parts_count_like_a_string() -> None:
    as_parts = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": " there"}],
        }
    ]
    expected = 3 + count_text("Hello", "gpt-4o") + count_text(" there", "gpt-4o") + 1 + 3
    assert count_messages(as_parts, "gpt-4o") == expected


# --- images -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1024, 1024, 765),  # OpenAI's vision pricing examples
        (2048, 4096, 1105),
        (512, 512, 255),
        (125, 50, 255),  # One API's note: a 125x50 image was billed 255
        (800, 600, 765),
        (3000, 1500, 1105),  # -> 2048x1024 -> 1536x768 -> 3x2 tiles
        (300, 700, 425),
    ],
)
def test_high_detail_tiles(width: int, height: int, expected: int) -> None:
    assert high_detail_tokens(width, height) == expected


@pytest.mark.parametrize(
    ("image", "mime", "size"),
    [
        (png(2048, 4096), "image/png", (2048, 4096)),
        (jpeg(3000, 1500), "image/jpeg", (3000, 1500)),
        (jpeg(640, 480, metadata=130_000), "image/jpeg", (640, 480)),  # frame header far in
        (gif(300, 700), "image/gif", (300, 700)),
        (webp(1024, 1024), "image/webp", (1024, 1024)),
        (b"not an image", "image/png", None),
    ],
)
def test_data_url_sizes_are_read_locally(image: bytes, mime: str, size: tuple[int, int]) -> None:
    assert data_url_image_size(data_url(image, mime)) == size


def test_image_parts() -> None:
    user = count_text("user", "gpt-4o")
    big = data_url(png(2048, 4096))
    assert count_messages([image_message(big, "high")], "gpt-4o") == 3 + 1105 + user + 3
    assert count_messages([image_message(big)], "gpt-4o") == 3 + 1105 + user + 3  # no detail
    assert count_messages([image_message(big, "auto")], "gpt-4o") == 3 + 1105 + user + 3
    assert count_messages([image_message(big, "low")], "gpt-4o") == 3 + 85 + user + 3
    # One API counts an unknown detail as 0 (it fails and logs)
    assert count_messages([image_message(big, "medium")], "gpt-4o") == 3 + user + 3
    text = "What is in this image?"
    mixed = [image_message(data_url(webp(1024, 1024), "image/webp"), "high", text)]
    assert count_messages(mixed, "gpt-4o") == 3 + count_text(text, "gpt-4o") + 765 + user + 3


def test_remote_images_are_never_fetched() -> None:
    url = "https://example.invalid/cat.png"
    user = count_text("user", "gpt-4o")
    assumed = high_detail_tokens(*ASSUMED_IMAGE_SIZE)
    assert assumed == 765
    assert count_messages([image_message(url)], "gpt-4o") == 3 + assumed + user + 3
    # sizes the relay learnt ahead of time are used
    sizes = {url: (2048, 4096)}
    counted = count_messages([image_message(url, "high")], "gpt-4o", image_size=sizes.get)
    assert counted == 3 + 1105 + user + 3
    unknown = count_messages([image_message(url)], "gpt-4o", image_size=lambda _: None)
    assert unknown == 3 + assumed + user + 3
    # image_url given as a bare string
    bare = [{"role": "user", "content": [{"type": "image_url", "image_url": url}]}]
    assert count_messages(bare, "gpt-4o") == 3 + assumed + user + 3


# --- approximate counting, inputs, streams ------------------------------------------------------


def test_approximate_counting() -> None:
    assert count_approx("hello world") == 4  # int(11 * 0.38)
    assert count_approx("你好") == 2  # 6 UTF-8 bytes * 0.38
    assert count_approx("") == 0
    assert count_approx("a" * 50) == 19  # exactly 19.0, no float noise
    assert count_text("hello world", "gpt-4", approximate=True) == 4
    # 3 + content 4 + role int(4 * 0.38) = 1 + 3
    messages = [{"role": "user", "content": "hello world"}]
    assert count_messages(messages, "gpt-4", approximate=True) == 11


def test_count_input() -> None:
    assert count_input("hello world", "gpt-3.5-turbo-instruct") == 2
    assert count_input(["hello", " world"], "gpt-3.5-turbo-instruct") == 2  # concatenated
    assert count_input([1, 2, 3], "gpt-3.5-turbo-instruct") == 0  # token arrays: not counted
    assert count_input(None, "gpt-3.5-turbo-instruct") == 0


def test_stream_counter_counts_the_joined_text_once() -> None:
    stream = stream_counter("gpt-4o")
    assert stream.count() == 0
    for chunk in ("hel", "lo", "", " world"):
        stream.add(chunk)
    assert stream.text == "hello world"
    assert stream.count() == 2  # "hel" + "lo" would be two tokens on their own
    stream.add("!")
    assert stream.count() == 3
    approx = stream_counter("gpt-4o", approximate=True)
    approx.add("hello world")
    assert approx.count() == 4


class SpyEncoding:
    """Records every string handed to the encoder."""

    def __init__(self, inner: tiktoken.Encoding) -> None:
        self.inner = inner
        self.encoded: list[str] = []

    def encode_ordinary(self, text: str) -> list[int]:
        self.encoded.append(text)
        return self.inner.encode_ordinary(text)


def test_a_request_never_encodes_the_same_string_twice() -> None:
    spy = SpyEncoding(SHARED.encoding_for("gpt-4"))
    counter = TokenCounter(spy, "gpt-4")  # type: ignore[arg-type]
    messages = [{"role": "user", "content": "same"}, {"role": "user", "content": "same"}]
    first = counter.messages(messages)
    assert counter.messages(messages) == first
    stream = counter.stream()
    stream.add("same")
    assert stream.count() == counter.text("same")
    assert sorted(spy.encoded) == ["same", "user"]


# --- where encodings come from: the tiktoken cache folder ---------------------------------------


def shipped(name: str) -> Path:
    return EncodingLoader().source(name)


def copy_raw(name: str, target: Path) -> Path:
    source = shipped(name)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".gz":
        target.write_bytes(gzip.decompress(source.read_bytes()))
    else:
        shutil.copyfile(source, target)
    return target


def test_shipped_copies_need_no_cache_folder(no_cache_env: None) -> None:
    tokenizer = Tokenizer.from_environ()
    assert tokenizer.loader.cache_dir is None
    assert tokenizer.count_text("hello world", "gpt-4") == 2
    assert tokenizer.count_text("hello world", "gpt-4o") == 2


def test_tiktoken_cache_dir_is_honoured(tmp_path: Path) -> None:
    cached = copy_raw(CL100K_BASE, tmp_path / tiktoken_cache_key(CL100K_BASE))
    tokenizer = Tokenizer.from_environ({"TIKTOKEN_CACHE_DIR": str(tmp_path)})
    assert tokenizer.loader.source(CL100K_BASE) == cached
    assert tokenizer.count_text("hello world", "gpt-4") == 2


def test_cache_folder_may_name_files_by_encoding(tmp_path: Path) -> None:
    cached = copy_raw(O200K_BASE, tmp_path / "o200k_base.tiktoken")
    tokenizer = Tokenizer.from_environ({"TIKTOKEN_CACHE_DIR": str(tmp_path)})
    assert tokenizer.loader.source(O200K_BASE) == cached
    assert tokenizer.count_text("hello world", "gpt-4o") == 2


def test_data_gym_cache_dir_is_the_lower_priority(tmp_path: Path) -> None:
    first = copy_raw(CL100K_BASE, tmp_path / "a" / tiktoken_cache_key(CL100K_BASE))
    second = copy_raw(CL100K_BASE, tmp_path / "b" / tiktoken_cache_key(CL100K_BASE))
    both = {"TIKTOKEN_CACHE_DIR": str(first.parent), "DATA_GYM_CACHE_DIR": str(second.parent)}
    assert Tokenizer.from_environ(both).loader.source(CL100K_BASE) == first
    only_gym = {"DATA_GYM_CACHE_DIR": str(second.parent)}
    assert Tokenizer.from_environ(only_gym).loader.source(CL100K_BASE) == second
    # as in tiktoken, a set TIKTOKEN_CACHE_DIR hides DATA_GYM_CACHE_DIR entirely
    (tmp_path / "empty").mkdir()
    hidden = {
        "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty"),
        "DATA_GYM_CACHE_DIR": str(second.parent),
    }
    assert Tokenizer.from_environ(hidden).loader.source(CL100K_BASE) == shipped(CL100K_BASE)


def test_settings_choose_the_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the work tree
    cached = copy_raw(CL100K_BASE, tmp_path / "cache" / tiktoken_cache_key(CL100K_BASE))
    settings = load_settings(tiktoken_cache_dir=str(cached.parent), data_gym_cache_dir="")
    assert Tokenizer.from_settings(settings).loader.source(CL100K_BASE) == cached
    gym = load_settings(tiktoken_cache_dir="", data_gym_cache_dir=str(cached.parent))
    assert Tokenizer.from_settings(gym).loader.source(CL100K_BASE) == cached


def test_environment_names_the_cache_folder(tmp_path: Path) -> None:
    assert (
        Tokenizer.from_environ({"TIKTOKEN_CACHE_DIR": str(tmp_path)}).loader.cache_dir == tmp_path
    )


def test_a_damaged_cached_file_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / tiktoken_cache_key(CL100K_BASE)).write_bytes(b"garbage 0\n")
    tokenizer = Tokenizer.from_environ({"TIKTOKEN_CACHE_DIR": str(tmp_path)})
    with caplog.at_level(logging.WARNING, logger="libs.common.tokenizer.encodings"):
        assert tokenizer.count_text("hello world", "gpt-4") == 2
    assert tokenizer.loader.source(CL100K_BASE) == shipped(CL100K_BASE)
    assert "not an intact copy of cl100k_base" in caplog.text


def test_concurrent_first_use_loads_once(tmp_path: Path) -> None:
    copy_raw(CL100K_BASE, tmp_path / tiktoken_cache_key(CL100K_BASE))
    tokenizer = Tokenizer.from_environ({"TIKTOKEN_CACHE_DIR": str(tmp_path)})
    barrier = threading.Barrier(8)
    seen: list[tuple[int, int]] = []

    def work() -> None:
        barrier.wait(timeout=10)
        seen.append(
            (id(tokenizer.encoding_for("gpt-4")), tokenizer.count_text("hi there", "gpt-4"))
        )

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(seen) == 8
    assert len(set(seen)) == 1


# --- no network, ever ---------------------------------------------------------------------------

NO_NETWORK_SCRIPT = r"""
import json, socket, sys

events = []
NETWORK_EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                  "urllib.Request", "http.client.connect"}

def hook(event, args):
    if event in NETWORK_EVENTS:
        events.append(event)
        if event == "socket.connect":
            raise OSError("network use is forbidden in this test")

sys.addaudithook(hook)

from libs.common.tokenizer import Tokenizer

tokenizer = Tokenizer.from_environ()
tokenizer.preload()
counts = [tokenizer.count_text("hello world", "gpt-4"),
          tokenizer.count_text("hello world", "gpt-4o"),
          tokenizer.count_messages([{"role": "user", "content": "hi"}], "o1-mini")]
before = list(events)
socket.getaddrinfo("localhost", 9)  # control: the hook does see network calls
print(json.dumps({"before": before, "after": events[len(before):], "counts": counts}))
"""


def test_counting_never_touches_the_network(tmp_path: Path) -> None:
    empty_cache = tmp_path / "cache"
    empty_cache.mkdir()
    dead_proxy = "http://127.0.0.1:9"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "TIKTOKEN_CACHE_DIR": str(empty_cache),  # nothing cached: tiktoken itself would download
        "HTTP_PROXY": dead_proxy,
        "HTTPS_PROXY": dead_proxy,
        "ALL_PROXY": dead_proxy,
        "http_proxy": dead_proxy,
        "https_proxy": dead_proxy,
    }
    result = subprocess.run(
        [sys.executable, "-c", NO_NETWORK_SCRIPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["before"] == []
    assert "socket.getaddrinfo" in report["after"]
    hi = count_text("hi", "o1-mini")
    assert report["counts"] == [2, 2, 3 + hi + 1 + 3]
    assert list(empty_cache.iterdir()) == []  # nothing written to the cache folder either
