"""Host tokens are encrypted at rest with Fernet (BACKSTRIDE_TOKEN_KEY)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken


class TokenCipher:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            # Raised when BACKSTRIDE_TOKEN_KEY changed since the token was stored.
            raise ValueError(
                "stored token cannot be decrypted with the current BACKSTRIDE_TOKEN_KEY"
            ) from exc
