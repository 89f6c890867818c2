"""Single-use codes mailed to users: email verification codes and password-reset tokens.

Codes live in the shared cache (Redis when configured) for `CODE_TTL_SECONDS`, keyed by purpose
and a hash of the address, so any admin replica can check a code another one mailed, and Redis
key listings do not show users' addresses. A code is consumed by the request that uses it: of two
concurrent requests with the same code only one succeeds. `MAX_WRONG_ATTEMPTS` wrong guesses
for an address void its code, which makes guessing a short code hopeless.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from enum import StrEnum
from typing import Final

from libs.common.cache import Cache, CacheError
from services.admin.errors import AdminError

logger = logging.getLogger(__name__)

CODE_TTL_SECONDS: Final = 600
"""One API's `VerificationValidMinutes`: ten minutes."""
CODE_TTL_MINUTES: Final = CODE_TTL_SECONDS // 60
MAX_WRONG_ATTEMPTS: Final = 5
VERIFICATION_CODE_DIGITS: Final = 6
RESET_TOKEN_LENGTH: Final = 32


class CodePurpose(StrEnum):
    EMAIL_VERIFICATION = "verify"
    PASSWORD_RESET = "reset"  # noqa: S105 (a purpose, not a password)


class CodeStoreUnavailable(AdminError):
    def __init__(self) -> None:
        super().__init__("验证码服务暂时不可用，请稍后重试")


def new_verification_code() -> str:
    """Six digits: easy to type from a phone, and guarded by the wrong-attempt limit."""
    return "".join(secrets.choice("0123456789") for _ in range(VERIFICATION_CODE_DIGITS))


def new_reset_token() -> str:
    """A reset token travels in a link, never typed: long and unguessable."""
    return secrets.token_hex(RESET_TOKEN_LENGTH // 2)


def _address_key(purpose: CodePurpose, email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return f"accounts:code:{purpose}:{digest}"


class VerificationCodes:
    """Issues and consumes codes in `cache`; a cache failure is answered as a refusal."""

    def __init__(self, cache: Cache) -> None:
        self._cache = cache

    async def issue(self, purpose: CodePurpose, email: str, code: str) -> None:
        """Remember `code` for `email`, replacing an earlier one and its wrong attempts."""
        key = _address_key(purpose, email)
        try:
            await self._cache.set(key, code.encode(), ttl=CODE_TTL_SECONDS)
            await self._cache.delete(key + ":wrong")
        except CacheError as exc:
            logger.warning("cannot store a %s code: %s", purpose, exc)
            raise CodeStoreUnavailable() from None

    async def consume(self, purpose: CodePurpose, email: str, code: str) -> bool:
        """Whether `code` is the live code of `email`; a right code can be used only once."""
        key = _address_key(purpose, email)
        try:
            stored = await self._cache.get(key)
            if stored is None or not code:
                return False
            if not hmac.compare_digest(stored, code.strip().encode()):
                if await self._cache.hit(key + ":wrong", CODE_TTL_SECONDS) >= MAX_WRONG_ATTEMPTS:
                    await self._cache.delete(key)
                return False
            # Deleting decides the race between two requests carrying the same code.
            return await self._cache.delete(key) == 1
        except CacheError as exc:
            logger.warning("cannot check a %s code: %s", purpose, exc)
            raise CodeStoreUnavailable() from None
