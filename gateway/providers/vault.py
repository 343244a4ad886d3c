"""Provider API keys at rest: encrypted with Fernet under GATEWAY_SECRET_KEY.

A stored key is `fernet:<token>`; anything else is taken as a plain key (rows
written before encryption). The secret key comes from the environment only,
is never stored, logged or returned, and decrypted keys are kept in memory
for the process's life (one per provider), so a request pays no decryption.
`cryptography` (some 6 MB) is loaded only when a secret key is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.errors import unavailable

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

PREFIX = "fernet:"


class VaultError(ValueError):
    """The secret key is missing or malformed."""


class Vault:
    def __init__(self, secret_key: str) -> None:
        self._fernet: Fernet | None = None
        if secret_key:
            from cryptography.fernet import Fernet

            try:
                self._fernet = Fernet(secret_key.encode())
            except ValueError:
                raise VaultError(
                    "GATEWAY_SECRET_KEY must be 32 url-safe base64-encoded bytes "
                    "(make one with `gateway new-secret-key`)"
                ) from None
        self._revealed: dict[str, str] = {}

    @staticmethod
    def new_secret_key() -> str:
        from cryptography.fernet import Fernet

        return Fernet.generate_key().decode()

    def seal(self, plain: str) -> str:
        if self._fernet is None:
            raise VaultError("set GATEWAY_SECRET_KEY to store provider API keys")
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def reveal(self, stored: str, provider: str = "") -> str:
        if not stored.startswith(PREFIX):
            return stored
        plain = self._revealed.get(stored)
        if plain is not None:
            return plain
        if self._fernet is None:
            raise unavailable(
                f"The API key of the provider '{provider}' is stored encrypted: "
                "set GATEWAY_SECRET_KEY to the key it was encrypted with.",
                code="provider_not_configured",
            )
        from cryptography.fernet import InvalidToken

        try:
            plain = self._fernet.decrypt(stored[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise unavailable(
                f"The stored API key of the provider '{provider}' cannot be decrypted "
                "with this GATEWAY_SECRET_KEY.",
                code="provider_not_configured",
            ) from None
        self._revealed[stored] = plain
        return plain
