"""First-start data: the root user (and, when configured, its token and access token).

Decisions:

* Root's password is "123456" hashed with bcrypt cost 10 in the ``$2a$`` form Go's
  golang.org/x/crypto/bcrypt writes, so a database can move between One API and oneapi.
* Without `INITIAL_ROOT_ACCESS_TOKEN` root has no access token (NULL), as in One API: a random
  token nobody was told about would only be a secret lying around. Root creates one in the UI.
* `INITIAL_ROOT_TOKEN` may be given with or without its ``sk-`` prefix; the token is unlimited,
  never expires, and is named "Initial Root Token".
* Seeding runs only when `users` is empty. Two admin replicas starting together both may see an
  empty table; the loser's insert hits the unique username and its whole transaction (user and
  token) is dropped, leaving the winner's rows. A clash that is not that race (a leftover token
  holding the `INITIAL_ROOT_TOKEN` key while `users` is empty) is a `SeedError`.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import TYPE_CHECKING

import bcrypt
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from libs.common.db.errors import SeedError
from libs.common.db.models import (
    ACCESS_TOKEN_LENGTH,
    NEVER_EXPIRES,
    ROOT_QUOTA,
    TOKEN_KEY_LENGTH,
    Token,
    TokenStatus,
    User,
    UserRole,
    UserStatus,
)

if TYPE_CHECKING:
    from libs.common.db.database import Database
    from libs.common.settings import Settings

__all__ = [
    "ROOT_DISPLAY_NAME",
    "ROOT_PASSWORD",
    "ROOT_TOKEN_NAME",
    "ROOT_USERNAME",
    "generate_aff_code",
    "hash_password",
    "seed_first_start",
]

ROOT_USERNAME = "root"
ROOT_PASSWORD = "123456"  # noqa: S105 (One API's documented first-start password)
ROOT_DISPLAY_NAME = "Root User"
ROOT_TOKEN_NAME = "Initial Root Token"  # noqa: S105
BCRYPT_COST = 10
_ALPHABET = string.ascii_letters + string.digits


def hash_password(password: str) -> str:
    """A bcrypt hash in Go's ``$2a$10$...`` form (bcrypt verifies ``$2a$`` and ``$2b$``)."""
    salt = bcrypt.gensalt(rounds=BCRYPT_COST, prefix=b"2a")
    return bcrypt.hashpw(password.encode(), salt).decode()


def generate_aff_code(length: int = 8) -> str:
    """A random invitation code of letters and digits (One API uses 4; 8 makes clashes rare)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


async def seed_first_start(database: Database, settings: Settings) -> None:
    """Create root (and its initial token / access token) when `users` is empty; else nothing."""
    token_key = settings.initial_root_token.strip().removeprefix("sk-")
    access_token = settings.initial_root_access_token.strip() or None
    if len(token_key) > TOKEN_KEY_LENGTH:
        raise SeedError(
            f"INITIAL_ROOT_TOKEN is longer than {TOKEN_KEY_LENGTH} characters (after 'sk-')"
        )
    if access_token is not None and len(access_token) > ACCESS_TOKEN_LENGTH:
        raise SeedError(
            f"INITIAL_ROOT_ACCESS_TOKEN is longer than {ACCESS_TOKEN_LENGTH} characters"
        )

    try:
        async with database.session() as session:
            if await session.scalar(select(User.id).limit(1)) is not None:
                return
            root = User(
                username=ROOT_USERNAME,
                password=hash_password(ROOT_PASSWORD),
                display_name=ROOT_DISPLAY_NAME,
                role=UserRole.ROOT,
                status=UserStatus.ENABLED,
                quota=ROOT_QUOTA,
                access_token=access_token,
                aff_code=generate_aff_code(),
            )
            session.add(root)
            await session.flush()
            if token_key:
                now = int(time.time())
                session.add(
                    Token(
                        user_id=root.id,
                        key=token_key,
                        status=TokenStatus.ENABLED,
                        name=ROOT_TOKEN_NAME,
                        created_time=now,
                        accessed_time=now,
                        expired_time=NEVER_EXPIRES,
                        remain_quota=ROOT_QUOTA,
                        unlimited_quota=True,
                    )
                )
    except IntegrityError as exc:
        # Normally another replica seeded at the same moment: then root exists now.
        async with database.session() as session:
            if await session.scalar(select(User.id).limit(1)) is not None:
                return
        raise SeedError(
            "cannot create the root user: INITIAL_ROOT_TOKEN is already the key of a token"
        ) from exc
