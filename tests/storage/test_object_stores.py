"""The ObjectStore contract, run on LocalStorage and on S3Storage against moto over HTTP."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.storage.conftest import (
    ACCESS_KEY,
    PREFIX,
    SECRET_KEY,
    Backend,
    count_requests,
    raw_client,
    s3_config,
)
from tests.storage.sigv4 import presigned_get_problem
from wfrun.storage.base import ObjectStore
from wfrun.storage.local import INLINE_BYTES, LocalStorage
from wfrun.storage.s3 import S3Config, S3Storage

MIB = 1024 * 1024
KEY = "runs/r-1/0/out/image.png"
UNSAFE_KEYS = ["../x", "/abs", "a//b", "", "a/../b", "a/b/"]


def _as_object_store(store: S3Storage) -> ObjectStore:
    return store  # mypy checks that S3Storage satisfies the Protocol


# -- the contract, on both backends ----------------------------------------------------------


async def test_put_get_round_trip(store: ObjectStore) -> None:
    data = bytes(range(256)) * 64
    large = os.urandom(INLINE_BYTES + 1)  # local storage writes it on a thread, not inline
    await store.put(KEY, data, content_type="image/png")
    await store.put("assets/empty", b"")
    await store.put("assets/large", large)
    assert await store.get(KEY) == data
    assert await store.get("assets/empty") == b""
    assert await store.get("assets/large") == large


async def test_put_overwrites(store: ObjectStore) -> None:
    await store.put(KEY, b"first version, longer")
    await store.put(KEY, b"second")
    assert await store.get(KEY) == b"second"


async def test_get_missing_raises_file_not_found(store: ObjectStore) -> None:
    with pytest.raises(FileNotFoundError):
        await store.get("assets/never-written")


async def test_exists_and_delete(store: ObjectStore) -> None:
    assert not await store.exists(KEY)
    await store.put(KEY, b"x")
    assert await store.exists(KEY)
    assert not await store.exists("runs/r-1")  # a "directory" is not an object
    await store.delete(KEY)
    assert not await store.exists(KEY)
    await store.delete(KEY)  # already gone: fine
    await store.delete("assets/never-written")
    with pytest.raises(FileNotFoundError):
        await store.get(KEY)


async def test_put_file_consumes_source(store: ObjectStore, tmp_path: Path) -> None:
    data = os.urandom(300 * 1024)
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    await store.put_file(KEY, source, content_type="image/png")
    assert not source.exists()
    assert await store.get(KEY) == data


@pytest.mark.parametrize("key", UNSAFE_KEYS)
async def test_unsafe_keys_rejected_before_any_io(
    backend: Backend, tmp_path: Path, key: str
) -> None:
    store = backend.store
    source = tmp_path / "upload.bin"
    source.write_bytes(b"payload")
    before = backend.touches()
    with pytest.raises(ValueError, match="unsafe"):
        await store.put(key, b"x")
    with pytest.raises(ValueError, match="unsafe"):
        await store.put_file(key, source)
    with pytest.raises(ValueError, match="unsafe"):
        await store.get(key)
    with pytest.raises(ValueError, match="unsafe"):
        await store.exists(key)
    with pytest.raises(ValueError, match="unsafe"):
        await store.delete(key)
    with pytest.raises(ValueError, match="unsafe"):
        store.local_path(key)
    assert source.read_bytes() == b"payload"
    assert backend.touches() == before


# -- local specifics -------------------------------------------------------------------------


async def test_local_path_points_at_the_file_and_no_presigned_url(tmp_path: Path) -> None:
    store = LocalStorage(tmp_path / "objects")
    assert store.local_path(KEY) is None
    await store.put(KEY, b"pixels")
    path = store.local_path(KEY)
    assert path == tmp_path / "objects" / KEY
    assert path.read_bytes() == b"pixels"
    assert store.presigned_url(KEY, 60) is None


# -- S3 specifics ----------------------------------------------------------------------------


async def test_s3_has_no_local_path(s3_store: S3Storage) -> None:
    await s3_store.put(KEY, b"x")
    assert _as_object_store(s3_store).local_path(KEY) is None


async def test_s3_prefix_is_applied(s3_store: S3Storage, moto_endpoint: str) -> None:
    await s3_store.put(KEY, b"a")
    await s3_store.put("assets/a-1", b"b")
    listing = raw_client(moto_endpoint).list_objects_v2(Bucket=s3_store.bucket)
    assert sorted(item.get("Key", "") for item in listing.get("Contents", [])) == [
        f"{PREFIX}assets/a-1",
        f"{PREFIX}{KEY}",
    ]


@pytest.mark.parametrize(
    ("prefix", "stored_as"),
    [("", "k/1"), ("media", "media/k/1"), ("media/", "media/k/1"), ("/a/b/", "a/b/k/1")],
)
def test_s3_prefix_is_normalised(prefix: str, stored_as: str) -> None:
    store = S3Storage(S3Config(bucket="bucket", prefix=prefix))
    assert store.object_key("k/1") == stored_as


@pytest.mark.parametrize(
    "config",
    [
        S3Config(bucket="bucket", prefix="a//b"),
        S3Config(bucket="bucket", prefix="../up"),
        S3Config(bucket="bucket", addressing_style="sideways"),
    ],
)
def test_s3_bad_config_is_rejected(config: S3Config) -> None:
    with pytest.raises(ValueError, match=r"unsafe|addressing"):
        S3Storage(config)


async def test_s3_content_type_is_stored(
    s3_store: S3Storage, moto_endpoint: str, tmp_path: Path
) -> None:
    source = tmp_path / "meta.json"
    source.write_bytes(b"{}")
    await s3_store.put(KEY, b"png", content_type="image/png")
    await s3_store.put_file("runs/r-1/meta.json", source, content_type="application/json")
    client = raw_client(moto_endpoint)
    head = client.head_object(Bucket=s3_store.bucket, Key=PREFIX + KEY)
    assert head["ContentType"] == "image/png"
    head = client.head_object(Bucket=s3_store.bucket, Key=f"{PREFIX}runs/r-1/meta.json")
    assert head["ContentType"] == "application/json"


async def test_s3_presigned_url_downloads_the_object(s3_store: S3Storage) -> None:
    data = os.urandom(4096)
    await s3_store.put(KEY, data)
    requests = count_requests(s3_store)
    url = s3_store.presigned_url(KEY, 300)
    assert requests() == 0  # signed locally
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["300"]
    assert presigned_get_problem(url, access_key=ACCESS_KEY, secret_key=SECRET_KEY) is None
    response = await asyncio.to_thread(httpx.get, url)  # a plain GET, off the loop
    assert response.status_code == 200
    assert response.content == data


async def test_s3_presigned_url_tampering_is_refused(s3_store: S3Storage) -> None:
    await s3_store.put(KEY, b"secret pixels")
    await s3_store.put("runs/r-1/other.png", b"other pixels")
    url = s3_store.presigned_url(KEY, 300)
    base, _, signature = url.rpartition("X-Amz-Signature=")
    forged = base + "X-Amz-Signature=" + ("0" if signature[0] != "0" else "1") + signature[1:]
    other_key = url.replace(KEY, "runs/r-1/other.png")

    def problem(candidate: str, secret: str = SECRET_KEY, now: datetime | None = None) -> str:
        found = presigned_get_problem(candidate, access_key=ACCESS_KEY, secret_key=secret, now=now)
        assert found is not None
        return found

    assert problem(forged) == "signature does not match"
    assert problem(other_key) == "signature does not match"
    assert problem(url, secret="another-secret") == "signature does not match"
    later = datetime.now(UTC) + timedelta(seconds=301)
    assert problem(url, now=later) == "expired or not yet valid"
    # moto checks no presigned signature (it serves `forged` too), but it does refuse a GET of
    # the private object with no signature at all.
    unsigned = await asyncio.to_thread(httpx.get, url.partition("?")[0])
    assert unsigned.status_code == 403


def test_s3_presigned_url_follows_addressing_style_without_network() -> None:
    config = S3Config(
        bucket="media-bucket",
        endpoint_url="https://s3.example.invalid",
        region="eu-central-1",
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        addressing_style="virtual",
    )
    url = S3Storage(config).presigned_url(KEY, 60)
    assert url.startswith(f"https://media-bucket.s3.example.invalid/{KEY}?")
    assert "%2Feu-central-1%2Fs3%2Faws4_request" in url
    assert presigned_get_problem(url, access_key=ACCESS_KEY, secret_key=SECRET_KEY) is None
    path_style = S3Storage(S3Config(**{**config.__dict__, "addressing_style": "path"}))
    assert path_style.presigned_url(KEY, 60).startswith(
        f"https://s3.example.invalid/media-bucket/{KEY}?"
    )


async def test_s3_ensure_bucket_is_idempotent_outside_us_east_1(moto_endpoint: str) -> None:
    store = S3Storage(s3_config(moto_endpoint, region="eu-west-1"))
    await store.ensure_bucket()
    await store.ensure_bucket()
    location = raw_client(moto_endpoint, "eu-west-1").get_bucket_location(Bucket=store.bucket)
    assert location.get("LocationConstraint") == "eu-west-1"
    await store.put(KEY, b"x")
    assert await store.get(KEY) == b"x"


async def test_s3_missing_bucket_is_an_error_not_a_missing_object(moto_endpoint: str) -> None:
    store = S3Storage(s3_config(moto_endpoint))  # ensure_bucket never called
    with pytest.raises(ClientError, match="NoSuchBucket"):
        await store.get(KEY)


@pytest.mark.slow
async def test_s3_put_file_streams_with_flat_memory(
    moto_child_endpoint: str, tmp_path: Path
) -> None:
    store = S3Storage(s3_config(moto_child_endpoint))  # moto in another process: not measured
    await store.ensure_bucket()
    size = 30 * MIB
    source = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with source.open("wb") as out:
        for _ in range(size // MIB):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            out.write(chunk)

    tracemalloc.start()
    try:
        async with asyncio.timeout(120):  # a hang fails, never a slow machine
            await store.put_file(KEY, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # About 2 MiB per part in flight (4 at once over plain HTTP, where botocore hashes each
    # part's payload in 1 MiB reads), whatever the file's size: ~7 MiB here, ~8 MiB at 100 MiB.
    assert peak < 12 * MIB, f"put_file of {size} bytes peaked at {peak} traced bytes"
    assert not source.exists()
    head = raw_client(moto_child_endpoint).head_object(Bucket=store.bucket, Key=PREFIX + KEY)
    assert head["ContentLength"] == size
    assert head["ETag"].strip('"').endswith("-4")  # 8 MiB parts: a multipart upload
    assert hashlib.sha256(await store.get(KEY)).hexdigest() == digest.hexdigest()
