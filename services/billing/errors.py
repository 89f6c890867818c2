"""The exceptions the billing service raises; every one derives from `BillingError`."""

from __future__ import annotations


class BillingError(Exception):
    """Base of billing's errors."""


class InvalidUsageError(BillingError, ValueError):
    """A usage event decodes but cannot be charged (negative quota, missing ids, ...)."""
