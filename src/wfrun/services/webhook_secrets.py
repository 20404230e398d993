"""Webhook secrets at rest: sealed with a key derived from the ``secret_key`` setting.

A signing secret must be readable to sign, so it cannot be hashed like an API key; it is
encrypted (Fernet: AES-128-CBC + HMAC-SHA256) and shown to its owner only when created or
rotated. A database dump alone does not reveal it; a changed ``secret_key`` makes the stored
secrets unreadable (rotate them then).
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet


class SecretBox:
    """Seals and opens webhook secrets."""

    def __init__(self, secret_key: str) -> None:
        digest = hashlib.sha256(b"wfrun webhook secrets\0" + secret_key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        return self._fernet.decrypt(sealed.encode("ascii")).decode()
