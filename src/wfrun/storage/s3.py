"""Object storage in any S3-compatible store (AWS S3, MinIO, R2, Ceph, moto, ...).

boto3 is the ``s3`` extra (``pip install 'wfrun[s3]'``), imported when an :class:`S3Storage` is
built, never before: a store configured without it fails at start-up with :class:`MissingExtra`.
One boto3 client per :class:`S3Storage` (boto3 clients are thread-safe); every call runs in a
worker thread via :func:`asyncio.to_thread`, so the event loop never blocks. A single PUT is
atomic in S3, so readers never see a partial object; :meth:`S3Storage.put_file` streams the file
from disk as a multipart upload, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from wfrun.errors import MissingExtra
from wfrun.storage.base import check_key

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import ClientError
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType

AddressingStyle = Literal["path", "virtual", "auto"]
_ADDRESSING_STYLES: dict[str, AddressingStyle] = {
    "path": "path",
    "virtual": "virtual",
    "auto": "auto",
}
_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_MIB = 1024 * 1024


@dataclass(frozen=True)
class S3Config:
    """Where and how to reach the bucket. ``None`` credentials use boto3's default chain."""

    bucket: str
    endpoint_url: str | None = None  # e.g. http://127.0.0.1:9000 for MinIO/moto; None = AWS
    region: str = "us-east-1"
    prefix: str = ""  # keys are stored as f"{prefix}{key}"; a trailing "/" is implied
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: str = "path"  # "path" | "virtual" | "auto"
    public_base_url: str | None = None  # stored for callers; unused here


def _normalise_prefix(prefix: str) -> str:
    """``""`` stays empty; ``"a/b"``, ``"/a/b/"`` become ``"a/b/"``."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    try:
        return check_key(stripped) + "/"
    except ValueError:
        raise ValueError(f"unsafe S3 key prefix {prefix!r}") from None


def require_sdk() -> None:
    """Raises:
    MissingExtra: boto3 (the ``s3`` extra) is not installed."""
    try:
        import boto3  # noqa: F401
        import botocore  # noqa: F401
    except ImportError:
        raise MissingExtra('storage.backend = "s3"', "s3") from None


def _transfer_config() -> TransferConfig:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=8 * _MIB,
        multipart_chunksize=8 * _MIB,
        max_concurrency=4,
        use_threads=True,
        preferred_transfer_client="classic",
    )


def _is_missing(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in _MISSING_CODES


class S3Storage:
    """Objects under ``config.prefix`` in ``config.bucket``."""

    def __init__(self, config: S3Config) -> None:
        require_sdk()
        import boto3
        from botocore.config import Config

        style = _ADDRESSING_STYLES.get(config.addressing_style)
        if style is None:
            raise ValueError(f"unknown S3 addressing style {config.addressing_style!r}")
        self.transfer_config = _transfer_config()
        self.config = config
        self.bucket = config.bucket
        self.prefix = _normalise_prefix(config.prefix)
        botocore_config = Config(
            region_name=config.region,
            signature_version="s3v4",
            s3={"addressing_style": style},
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            max_pool_connections=16,
            # Only checksum when the API demands it: many S3-compatible stores reject the
            # default CRC trailers of botocore >= 1.36.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        # A private session: the default one is shared mutable state and not thread-safe.
        session = boto3.session.Session(
            aws_access_key_id=config.access_key_id,
            aws_secret_access_key=config.secret_access_key,
            region_name=config.region,
        )
        self.client: S3Client = session.client(
            "s3", endpoint_url=config.endpoint_url, config=botocore_config
        )

    def object_key(self, key: str) -> str:
        """The S3 key holding ``key`` (prefix applied); ValueError when ``key`` is unsafe."""
        return self.prefix + check_key(key)

    async def put(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        name = self.object_key(key)
        if content_type is None:
            await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=name, Body=data)
        else:
            await asyncio.to_thread(
                self.client.put_object,
                Bucket=self.bucket,
                Key=name,
                Body=data,
                ContentType=content_type,
            )

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        name = self.object_key(key)
        await asyncio.to_thread(self._upload_file, name, path, content_type)

    def _upload_file(self, name: str, path: Path, content_type: str | None) -> None:
        extra = {"ContentType": content_type} if content_type is not None else None
        self.client.upload_file(
            str(path), self.bucket, name, ExtraArgs=extra, Config=self.transfer_config
        )
        path.unlink(missing_ok=True)

    async def get(self, key: str) -> bytes:
        name = self.object_key(key)
        return await asyncio.to_thread(self._get, name)

    def _get(self, name: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _is_missing(error):
                raise FileNotFoundError(f"no object {name!r} in bucket {self.bucket!r}") from error
            raise
        body = response["Body"]
        try:
            return body.read()
        finally:
            body.close()

    async def exists(self, key: str) -> bool:
        name = self.object_key(key)
        return await asyncio.to_thread(self._exists, name)

    def _exists(self, name: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=name)
        except ClientError as error:
            if _is_missing(error):
                return False
            raise
        return True

    async def delete(self, key: str) -> None:
        name = self.object_key(key)
        await asyncio.to_thread(self._delete, name)

    def _delete(self, name: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except ClientError as error:  # S3 says 204 for absent keys; some clones say 404
            if not _is_missing(error):
                raise

    def local_path(self, key: str) -> None:
        check_key(key)

    def presigned_url(self, key: str, expires_in: int) -> str:
        """A SigV4 GET URL valid for ``expires_in`` seconds; signed locally, no network."""
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.object_key(key)},
            ExpiresIn=expires_in,
        )

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (for tests and development setups)."""
        await asyncio.to_thread(self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
            return
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket"}:
                raise
        try:
            if self.config.region == "us-east-1":
                self.client.create_bucket(Bucket=self.bucket)
            else:
                region = cast("BucketLocationConstraintType", self.config.region)
                self.client.create_bucket(
                    Bucket=self.bucket, CreateBucketConfiguration={"LocationConstraint": region}
                )
        except ClientError as error:  # lost a race with another creator
            code = error.response.get("Error", {}).get("Code")
            if code != "BucketAlreadyOwnedByYou":
                raise
