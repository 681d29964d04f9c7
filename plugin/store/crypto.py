"""Host tokens are encrypted at rest with Fernet (BACKSTRIDE_TOKEN_KEY: one key, or several comma-separated,
newest first, so that a key can be rotated without locking anybody out)."""

from __future__ import annotations

from cryptography.fernet import InvalidToken, MultiFernet

from plugin.config import parse_keys


class TokenUnreadable(ValueError):
    """A stored token that no configured key opens: the key it was written with is gone. The athlete must
    reconnect; nothing else is lost."""


class TokenCipher:
    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet(parse_keys(keys))

    def encrypt(self, plaintext: str) -> str:
        """Encrypted with the newest key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Decrypted with whichever configured key opens it."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenUnreadable("stored token cannot be decrypted with any BACKSTRIDE_TOKEN_KEY") from exc

    def rotate(self, ciphertext: str) -> str:
        """The same token encrypted with the newest key (TokenUnreadable when no key opens it)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise TokenUnreadable("stored token cannot be decrypted with any BACKSTRIDE_TOKEN_KEY") from exc
