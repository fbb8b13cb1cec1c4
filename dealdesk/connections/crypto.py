"""API keys are encrypted at rest with Fernet, keyed by ``DEALDESK_ENCRYPTION_KEY``."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

MASK = "••••"


class UndecryptableSecret(Exception):
    """The stored key was encrypted under another encryption key."""

    message = "cannot decrypt the stored key; enter it again"

    def __str__(self) -> str:
        return self.message


def _fernet() -> Fernet:
    return Fernet(settings.DEALDESK_ENCRYPTION_KEY.encode())


def encrypt_secret(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError):
        raise UndecryptableSecret from None


def secret_hint(plain: str) -> str:
    """``••••1a2b``: enough to recognise a key, never enough to use it."""
    return MASK + plain[-4:] if len(plain) >= 8 else MASK
