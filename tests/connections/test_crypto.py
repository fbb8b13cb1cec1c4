import pytest
from cryptography.fernet import Fernet

from dealdesk.connections.crypto import (
    UndecryptableSecret,
    decrypt_secret,
    encrypt_secret,
    secret_hint,
)


def test_encrypt_then_decrypt_returns_the_key():
    token = encrypt_secret("sk_live_abcdef1a2b")
    assert "sk_live_abcdef1a2b" not in token
    assert decrypt_secret(token) == "sk_live_abcdef1a2b"


def test_each_encryption_is_different_so_equal_keys_are_not_recognisable():
    assert encrypt_secret("same-key-1234") != encrypt_secret("same-key-1234")


def test_hint_shows_only_the_last_four_characters():
    assert secret_hint("sk_live_abcdef1a2b") == "••••1a2b"


def test_hint_of_a_short_key_reveals_nothing():
    assert secret_hint("abc1234") == "••••"


def test_key_stored_under_another_encryption_key_is_reported_as_undecryptable(settings):
    token = encrypt_secret("sk_live_abcdef1a2b")
    settings.DEALDESK_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(UndecryptableSecret) as caught:
        decrypt_secret(token)
    assert str(caught.value) == "cannot decrypt the stored key; enter it again"


def test_garbage_token_is_reported_as_undecryptable():
    with pytest.raises(UndecryptableSecret):
        decrypt_secret("not-a-fernet-token")
