"""Authenticated encryption of secrets stored in the database (channel keys), beyond One API.

    box = SecretBox(settings.crypto_secret)
    stored = box.seal("sk-upstream")        # "enc:v1:..." when CRYPTO_SECRET is set
    box.open(stored)                        # "sk-upstream"
    box.open("sk-written-by-one-api")       # no prefix: plaintext, returned as is

Format of a sealed value: ``enc:v1:`` followed by the URL-safe base64 of a 12-byte random
nonce and the AES-256-GCM ciphertext with its 16-byte tag. The prefix is also the associated
data, so a body cannot be passed off as another version's. The AES key is HKDF-SHA256 of
`CRYPTO_SECRET` (which should be a long random value, like `SESSION_SECRET`); the secret itself
is never used as a key.

Only a value with the prefix is ever decrypted: rows written by One API, or while
`CRYPTO_SECRET` was unset, are plaintext and keep working. Without a secret, `seal` stores
values as given (One API's behaviour) and `open` refuses sealed values: a process that lacks
the secret cannot use such a key, and says so instead of sending ciphertext upstream.

Exceptions (messages never hold the value or the secret)::

    CryptoError
    └── UnreadableSecretError   a sealed value that this secret cannot open (no secret, another
                                secret, a damaged value)
"""

from __future__ import annotations

import base64
import binascii
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "PLAINTEXT",
    "SEALED_PREFIX",
    "CryptoError",
    "SecretBox",
    "UnreadableSecretError",
    "is_sealed",
]

SEALED_PREFIX: Final = "enc:v1:"
"""Marks a sealed value; the version names the format (cipher, key derivation, layout)."""
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
_KEY_BYTES: Final = 32
# Fixed, public inputs of the key derivation: they separate this key from any other key a
# future feature might derive from the same secret.
_KDF_SALT: Final = b"oneapi.crypto"
_KDF_INFO: Final = b"oneapi channel keys " + SEALED_PREFIX.encode()


class CryptoError(Exception):
    """Base of the errors of this module."""


class UnreadableSecretError(CryptoError):
    """A sealed value that cannot be opened: no secret, another secret, or damaged."""


def is_sealed(stored: str) -> bool:
    """Whether `stored` is a sealed value (as opposed to plaintext)."""
    return stored.startswith(SEALED_PREFIX)


def _derive_key(secret: str) -> bytes:
    kdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=_KDF_SALT, info=_KDF_INFO)
    return kdf.derive(secret.encode("utf-8"))


class SecretBox:
    """Seals and opens values under one secret; without a secret, values stay plaintext."""

    __slots__ = ("_aead",)

    def __init__(self, secret: str = "") -> None:
        self._aead = AESGCM(_derive_key(secret)) if secret else None

    @property
    def seals(self) -> bool:
        """Whether `seal` encrypts (a secret is set)."""
        return self._aead is not None

    def seal(self, plaintext: str) -> str:
        """`plaintext` encrypted under a fresh nonce; as is when no secret is set."""
        if self._aead is None:
            return plaintext
        nonce = os.urandom(_NONCE_BYTES)
        body = self._aead.encrypt(nonce, plaintext.encode("utf-8"), SEALED_PREFIX.encode())
        return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + body).decode("ascii")

    def open(self, stored: str) -> str:
        """The plaintext of `stored`: decrypted when sealed, else `stored` itself.

        Raises UnreadableSecretError for a sealed value this box cannot open.
        """
        if not is_sealed(stored):
            return stored
        if self._aead is None:
            raise UnreadableSecretError("the value is encrypted and CRYPTO_SECRET is not set")
        try:
            raw = base64.urlsafe_b64decode(stored[len(SEALED_PREFIX) :].encode("ascii"))
        except (binascii.Error, UnicodeEncodeError):
            raise UnreadableSecretError("the encrypted value is damaged") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise UnreadableSecretError("the encrypted value is damaged")
        nonce, body = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        try:
            plaintext = self._aead.decrypt(nonce, body, SEALED_PREFIX.encode())
        except InvalidTag:
            raise UnreadableSecretError(
                "the encrypted value does not open with this CRYPTO_SECRET (or is damaged)"
            ) from None
        return plaintext.decode("utf-8")

    def __repr__(self) -> str:
        return f"SecretBox(seals={self.seals})"


PLAINTEXT: Final = SecretBox()
"""A box without a secret: stores values as given and reads plaintext (One API's behaviour)."""
