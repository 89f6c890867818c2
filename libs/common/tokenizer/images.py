"""Prompt tokens of an image part, as One API counts them (OpenAI's vision pricing).

`low` detail costs 85 tokens. Otherwise (`high`, `auto`, or no detail: One API found `auto`
billed as `high`) the image is scaled to fit 2048x2048, then its short side to 768, and costs
170 per 512px tile plus 85. Any other detail value counts 0, as in One API (which logs an error).

The size must be known without downloading on the relay's hot path:

- a `data:` URL is measured locally from the image header (PNG, JPEG, GIF, WebP);
- otherwise the caller's `image_size` resolver is asked (say, sizes fetched ahead of time);
- failing both, the image is assumed to be `ASSUMED_IMAGE_SIZE` (1024x1024: 765 tokens), a
  typical upload, where One API would fetch it (and count 0 when the fetch fails). This count
  only matters when the upstream reports no usage; the pre-charge is corrected afterwards.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from collections.abc import Callable
from typing import Final, TypeAlias

ImageSizeResolver: TypeAlias = Callable[[str], tuple[int, int] | None]
"""Maps an image URL to (width, height) in pixels, or None when unknown."""

LOW_DETAIL_TOKENS: Final = 85
TILE_TOKENS: Final = 170
BASE_TOKENS: Final = 85
ASSUMED_IMAGE_SIZE: Final = (1024, 1024)

_HEADER_PREFIX_CHARS = 65536  # base64 characters decoded first when sniffing a data: URL


def image_tokens(url: str, detail: str | None, image_size: ImageSizeResolver | None = None) -> int:
    """Prompt tokens of one `image_url` part."""
    if detail == "low":
        return LOW_DETAIL_TOKENS
    if detail not in (None, "", "auto", "high"):
        return 0
    size = data_url_image_size(url) if url.startswith("data:") else None
    if size is None and image_size is not None:
        size = image_size(url)
    width, height = size or ASSUMED_IMAGE_SIZE
    return high_detail_tokens(width, height)


def high_detail_tokens(width: int, height: int) -> int:
    """Tokens of a `high` detail image of width x height pixels."""
    # Same float steps (and truncations) as One API, so the tile count matches exactly.
    if width > 2048 or height > 2048:
        scale = 2048.0 / max(width, height)
        width, height = int(width * scale), int(height * scale)
    if width > 768 and height > 768:
        scale = 768.0 / min(width, height)
        width, height = int(width * scale), int(height * scale)
    tiles = math.ceil(width / 512) * math.ceil(height / 512)
    return tiles * TILE_TOKENS + BASE_TOKENS


def data_url_image_size(url: str) -> tuple[int, int] | None:
    """(width, height) of a base64 `data:` URL image, read from its header; None if unknown."""
    head, sep, payload = url.partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    payload = payload.strip()
    prefix = payload[: _HEADER_PREFIX_CHARS - _HEADER_PREFIX_CHARS % 4]
    size = image_size_from_bytes(_b64decode(prefix))
    if size is None and len(prefix) < len(payload):
        # a JPEG may carry large metadata before its frame header
        size = image_size_from_bytes(_b64decode(payload))
    return size


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""


def image_size_from_bytes(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the start of a PNG, GIF, JPEG or WebP file; None if unknown."""
    try:
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            width, height = struct.unpack(">II", data[16:24])
            return width, height
        if data[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", data[6:10])
            return width, height
        if data.startswith(b"\xff\xd8"):
            return _jpeg_size(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp_size(data)
    except (struct.error, IndexError):
        return None
    return None


# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xD9)})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE_MARKERS:
            i += 2
            continue
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        b0, b1, b2, b3 = data[21:25]
        width = 1 + (((b1 & 0x3F) << 8) | b0)
        height = 1 + (((b3 & 0x0F) << 10) | (b2 << 2) | ((b1 & 0xC0) >> 6))
        return width, height
    if chunk == b"VP8X":
        width = 1 + int.from_bytes(data[24:27], "little")
        height = 1 + int.from_bytes(data[27:30], "little")
        return width, height
    return None
