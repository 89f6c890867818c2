"""Errors of the pricing package."""

from __future__ import annotations


class PricingError(Exception):
    """Base of every error `libs.common.pricing` raises."""


class InvalidRatioTableError(PricingError, ValueError):
    """A ratio option (`ModelRatio`, `CompletionRatio`, `GroupRatio`) is not a valid table.

    The message is one line naming the option and, for a bad value, the key.
    """


class InvalidQuotaArgumentError(PricingError, ValueError):
    """A quota formula got a negative count or a ratio that is negative or not finite."""
