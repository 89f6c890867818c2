"""Sessions, passwords and request-forgery checks for the admin's `/api`.

Sessions are stateless: the cookie holds the user id and a tag of the password hash, signed
with HMAC-SHA256 under `SESSION_SECRET`. Every request reloads the user, so disabling a user or
changing a role takes effect at once (One API trusts the role stored in its cookie), and a
password change ends every other session (the tag no longer matches).

Cross-site request forgery: the cookie is `SameSite=Strict` and `HttpOnly`, and a state-changing
request authenticated by the cookie is refused when the browser says it came from another site
(`Sec-Fetch-Site: cross-site`, or an `Origin` whose host is not the one asked). One API's own
front-ends send neither a custom header nor a token, and keep working; access-token clients
are not browsers and are not checked.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import bcrypt
import orjson
from starlette.requests import HTTPConnection

from libs.common.db.models import TOKEN_KEY_LENGTH
from libs.common.db.seed import hash_password

__all__ = [
    "SESSION_COOKIE",
    "SESSION_MAX_AGE_SECONDS",
    "SessionClaims",
    "SessionCodec",
    "hash_password",
    "is_cross_site",
    "new_secret",
    "new_token_key",
    "password_tag",
    "verify_password",
]

logger = logging.getLogger(__name__)

SESSION_COOKIE: Final = "session"
"""One API's cookie name, so a reverse proxy's rules for it keep working."""
SESSION_MAX_AGE_SECONDS: Final = 30 * 24 * 3600
"""One API keeps a login for 30 days."""
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def new_secret(length: int) -> str:
    """A random string of letters and digits from the system's cryptographic source."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_token_key() -> str:
    """A token key: 48 characters, shown to users as `sk-` + key."""
    return new_secret(TOKEN_KEY_LENGTH)


def verify_password(password: str, hashed: str) -> bool:
    """Whether `password` matches a bcrypt hash (`$2a$`, Go's form, or `$2b$`)."""
    try:
        return bcrypt.checkpw(password.encode(), hashed.encode())
    except ValueError:  # not a bcrypt hash: an imported row, a corrupted column
        return False


@functools.lru_cache(maxsize=64)
def is_default_root_password(hashed: str) -> bool:
    """Whether a hash is of One API's first-start password; one bcrypt check per hash."""
    from libs.common.db.seed import ROOT_PASSWORD

    return verify_password(ROOT_PASSWORD, hashed)


def password_tag(hashed: str) -> str:
    """A short, non-reversible tag of a password hash; sessions carry it to die with it."""
    return hashlib.sha256(hashed.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SessionClaims:
    user_id: int
    password_tag: str
    issued_at: int


class SessionCodec:
    """Signs and reads session cookies. A forged, altered or expired cookie reads as None."""

    def __init__(self, secret: str) -> None:
        if not secret:
            secret = secrets.token_urlsafe(32)
            logger.warning(
                "SESSION_SECRET is not set: using a random one, so logins end when this "
                "process restarts and are not shared with other admin replicas"
            )
        self._key = hashlib.sha256(b"oneapi-session\0" + secret.encode()).digest()

    def encode(self, claims: SessionClaims) -> str:
        payload = _b64(orjson.dumps([claims.user_id, claims.password_tag, claims.issued_at]))
        return f"{payload}.{self._sign(payload)}"

    def decode(self, cookie: str, *, now: float | None = None) -> SessionClaims | None:
        payload, _, signature = cookie.partition(".")
        if not payload or not hmac.compare_digest(signature, self._sign(payload)):
            return None
        try:
            user_id, tag, issued_at = orjson.loads(_unb64(payload))
        except (ValueError, TypeError, binascii.Error):
            return None
        if not (isinstance(user_id, int) and isinstance(tag, str) and isinstance(issued_at, int)):
            return None
        if (now if now is not None else time.time()) - issued_at > SESSION_MAX_AGE_SECONDS:
            return None
        return SessionClaims(user_id, tag, issued_at)

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())


def is_cross_site(request: HTTPConnection) -> bool:
    """Whether a browser marked this request as sent by another site (forgery, when unsafe)."""
    if request.scope.get("method", "GET") not in UNSAFE_METHODS:
        return False
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return True
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin == "null"
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    return urlsplit(origin).netloc.lower() != host.split(",")[0].strip().lower()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
