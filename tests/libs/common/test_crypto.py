"""Sealed secrets: encrypted and authenticated under CRYPTO_SECRET, plaintext rows still read."""

from __future__ import annotations

import base64

import pytest

from libs.common.crypto import PLAINTEXT, SEALED_PREFIX, SecretBox, UnreadableSecretError, is_sealed

SECRET = "a long random value, as CRYPTO_SECRET should be"


def test_a_sealed_value_opens_to_what_was_sealed_and_shows_nothing_of_it() -> None:
    box = SecretBox(SECRET)
    for plaintext in ("sk-abc123", "", "ak|sk|us-east-1", "密钥 🔑", "x" * 10_000):
        sealed = box.seal(plaintext)
        assert sealed.startswith(SEALED_PREFIX)
        assert is_sealed(sealed)
        assert sealed.isascii()
        if plaintext:
            assert plaintext not in sealed
        assert box.open(sealed) == plaintext
        assert SecretBox(SECRET).open(sealed) == plaintext  # the key derives from the secret


def test_sealing_twice_gives_two_different_values() -> None:
    box = SecretBox(SECRET)
    assert box.seal("sk-same") != box.seal("sk-same")


def test_plaintext_is_read_as_is_with_or_without_a_secret() -> None:
    for box in (SecretBox(SECRET), SecretBox(), PLAINTEXT):
        assert box.open("sk-written-by-one-api") == "sk-written-by-one-api"
        assert box.open("") == ""


def test_without_a_secret_values_are_stored_as_given() -> None:
    assert not PLAINTEXT.seals
    assert SecretBox(SECRET).seals
    assert PLAINTEXT.seal("sk-abc") == "sk-abc"


def test_a_sealed_value_does_not_open_without_the_right_secret() -> None:
    sealed = SecretBox(SECRET).seal("sk-abc")
    with pytest.raises(UnreadableSecretError, match="CRYPTO_SECRET is not set"):
        PLAINTEXT.open(sealed)
    with pytest.raises(UnreadableSecretError, match="does not open"):
        SecretBox(SECRET + "!").open(sealed)


def test_a_tampered_or_damaged_value_is_refused_not_misread() -> None:
    box = SecretBox(SECRET)
    sealed = box.seal("sk-abc")
    raw = bytearray(base64.urlsafe_b64decode(sealed[len(SEALED_PREFIX) :]))
    for index in (0, 12, len(raw) - 1):  # nonce, ciphertext, tag
        flipped = bytearray(raw)
        flipped[index] ^= 0x01
        tampered = SEALED_PREFIX + base64.urlsafe_b64encode(bytes(flipped)).decode()
        with pytest.raises(UnreadableSecretError):
            box.open(tampered)
    for damaged in (SEALED_PREFIX, SEALED_PREFIX + "@@@", SEALED_PREFIX + "AAAA", sealed[:-8]):
        with pytest.raises(UnreadableSecretError):
            box.open(damaged)


def test_errors_and_representations_never_hold_the_secret_or_the_value() -> None:
    box = SecretBox(SECRET)
    sealed = box.seal("sk-very-private")
    with pytest.raises(UnreadableSecretError) as caught:
        SecretBox("other").open(sealed)
    for text in (str(caught.value), repr(box)):
        assert SECRET not in text
        assert "sk-very-private" not in text
