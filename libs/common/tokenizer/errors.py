"""Errors of the tokenizer package."""

from __future__ import annotations


class TokenizerError(Exception):
    """Base of every error `libs.common.tokenizer` raises."""


class EncodingUnavailableError(TokenizerError):
    """No readable, intact copy of a BPE encoding exists on this machine."""
