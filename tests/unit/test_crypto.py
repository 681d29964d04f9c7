"""Host tokens encrypted at rest (plugin/store/crypto.py)."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from plugin.store.crypto import TokenCipher, TokenUnreadable

TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"  # shaped like a Strava access token, made up


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher(Fernet.generate_key().decode())


def test_round_trip(cipher):
    assert cipher.decrypt(cipher.encrypt(TOKEN)) == TOKEN


def test_round_trip_of_non_ascii_text(cipher):
    assert cipher.decrypt(cipher.encrypt("jeton-é-😀")) == "jeton-é-😀"


def test_ciphertext_does_not_reveal_the_token(cipher):
    ciphertext = cipher.encrypt(TOKEN)

    assert TOKEN not in ciphertext
    assert TOKEN[:12] not in ciphertext


def test_same_token_encrypts_differently_each_time(cipher):
    assert cipher.encrypt(TOKEN) != cipher.encrypt(TOKEN)


def test_another_instance_with_the_same_key_decrypts():
    key = Fernet.generate_key().decode()

    assert TokenCipher(key).decrypt(TokenCipher(key).encrypt(TOKEN)) == TOKEN


def test_wrong_key_is_a_value_error_naming_the_setting(cipher):
    ciphertext = cipher.encrypt(TOKEN)
    other = TokenCipher(Fernet.generate_key().decode())

    with pytest.raises(ValueError) as info:
        other.decrypt(ciphertext)

    assert "BACKSTRIDE_TOKEN_KEY" in str(info.value)
    assert TOKEN not in str(info.value)


def test_tampered_ciphertext_is_a_value_error(cipher):
    ciphertext = cipher.encrypt(TOKEN)
    tampered = ciphertext[:-6] + ("A" if ciphertext[-6] != "A" else "B") + ciphertext[-5:]

    with pytest.raises(ValueError):
        cipher.decrypt(tampered)


def test_several_keys_newest_first_read_old_tokens_and_write_with_the_newest():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = TokenCipher(old).encrypt(TOKEN)
    both = TokenCipher(f"{new},{old}")
    assert both.decrypt(stored) == TOKEN
    assert TokenCipher(new).decrypt(both.encrypt(TOKEN)) == TOKEN
    assert TokenCipher(new).decrypt(both.rotate(stored)) == TOKEN


def test_a_token_no_key_opens_is_unreadable():
    stored = TokenCipher(Fernet.generate_key().decode()).encrypt(TOKEN)
    other = TokenCipher(Fernet.generate_key().decode())
    with pytest.raises(TokenUnreadable):
        other.decrypt(stored)
    with pytest.raises(TokenUnreadable):
        other.rotate(stored)
