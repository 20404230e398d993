"""Signed, expiring links to stored files: HMAC-SHA256 over ``key`` and ``expires``."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from wfrun.errors import FileLinkInvalid


class UrlSigner:
    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

    def signature(self, key: str, expires: int) -> str:
        message = f"{key}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def path(self, key: str, expires: int) -> str:
        """The query-signed path of ``key`` (to be joined to the public base URL)."""
        return f"/files/{quote(key)}?expires={expires}&signature={self.signature(key, expires)}"

    def verify(self, key: str, expires: int, signature: str, *, now: int) -> None:
        """Raises FileLinkInvalid when the link was tampered with or has expired.

        The signature is compared as bytes, in constant time; ours are hexadecimal, so one
        that is not ASCII is refused as it is (``compare_digest`` takes only ASCII ``str``).
        """
        if not signature.isascii():
            raise FileLinkInvalid("the link's signature is not hexadecimal")
        expected = self.signature(key, expires).encode("ascii")
        if not hmac.compare_digest(expected, signature.encode("ascii")):
            raise FileLinkInvalid("the link's signature does not match")
        if expires < now:
            raise FileLinkInvalid(f"the link expired at {expires} (now {now})")
