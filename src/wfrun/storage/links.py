"""Absolute, expiring links to stored objects."""

from __future__ import annotations

import time

from wfrun.storage.base import ObjectStore
from wfrun.storage.signing import UrlSigner


class Links:
    """Signs storage keys into absolute, expiring URLs, fresh on every read: the store's own
    presigned URLs where it has them (S3), else wfrun's HMAC-signed ``/files`` links."""

    def __init__(self, signer: UrlSigner, store: ObjectStore, base: str, ttl_seconds: int) -> None:
        self.signer, self.store, self.base, self.ttl = signer, store, base, ttl_seconds

    def url(self, key: str) -> str:
        presigned = self.store.presigned_url(key, self.ttl)
        if presigned is not None:
            return presigned
        return self.base + self.signer.path(key, int(time.time()) + self.ttl)

    def expires_at(self) -> int:
        return int(time.time()) + self.ttl
