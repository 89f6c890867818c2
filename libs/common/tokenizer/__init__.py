"""Exact, offline token counts for billing, as One API counts them.

A process builds one `Tokenizer` from its settings (`Tokenizer.from_settings`) and passes it
down; a request that counts several things takes one `TokenCounter` (`tokenizer.counter(model)`),
which never encodes the same string twice. Encodings come from local files only (`encodings`).
"""

from __future__ import annotations

from libs.common.tokenizer.counting import (
    REPLY_PRIMING_TOKENS,
    StreamTokenCounter,
    TokenCounter,
    Tokenizer,
    count_approx,
    encoding_name_for_model,
)
from libs.common.tokenizer.encodings import CL100K_BASE, O200K_BASE, EncodingLoader
from libs.common.tokenizer.errors import EncodingUnavailableError, TokenizerError
from libs.common.tokenizer.images import (
    ASSUMED_IMAGE_SIZE,
    ImageSizeResolver,
    data_url_image_size,
    high_detail_tokens,
    image_size_from_bytes,
    image_tokens,
)

__all__ = [
    "ASSUMED_IMAGE_SIZE",
    "CL100K_BASE",
    "O200K_BASE",
    "REPLY_PRIMING_TOKENS",
    "EncodingLoader",
    "EncodingUnavailableError",
    "ImageSizeResolver",
    "StreamTokenCounter",
    "TokenCounter",
    "Tokenizer",
    "TokenizerError",
    "count_approx",
    "data_url_image_size",
    "encoding_name_for_model",
    "high_detail_tokens",
    "image_size_from_bytes",
    "image_tokens",
]
