"""Encryption at rest for camera passwords (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from the environment or a file (``registry.key`` in the configuration), never from the
database. Several keys may be given, newest first, separated by commas: tokens are written with the first
and read with any, which is how ``jifang registry rotate-key`` moves every password to a new key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jifang.errors import ConfigError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

# cryptography is imported when a key is first used: an agent whose cameras carry no encrypted password
# (configuration-file cameras) does not pay its 8 MiB


class SecretBox:
    def __init__(self, keys: str) -> None:
        from cryptography.fernet import Fernet, MultiFernet

        parts = [part.strip() for part in keys.split(",") if part.strip()]
        if not parts:
            raise ConfigError("registry key is empty: generate one with 'jifang registry new-key'")
        try:
            self._fernet: MultiFernet = MultiFernet([Fernet(part.encode()) for part in parts])
        except (ValueError, TypeError):
            raise ConfigError("registry key is not a Fernet key (32 url-safe base64-encoded bytes); "
                              "generate one with 'jifang registry new-key'") from None

    @staticmethod
    def new_key() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except _invalid_token():
            raise ConfigError("a camera password cannot be decrypted with the configured registry key "
                              "(wrong key, or rotated without keeping the old one)") from None

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the newest key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except _invalid_token():
            raise ConfigError("a camera password cannot be decrypted with any configured registry key") from None


def _invalid_token() -> type[Exception]:
    from cryptography.fernet import InvalidToken

    return InvalidToken
