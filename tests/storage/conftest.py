"""Object-store fixtures: every behavioural test runs on the local backend and on S3 (moto).

The S3 side talks HTTP to a real S3-protocol server on loopback: moto's ThreadedMotoServer,
started once per session in this process. ``moto_child_endpoint`` runs a second one in a child
process, for tests that measure this process's memory (moto keeps every object in memory and
concatenates multipart uploads, so an in-process server would swamp the measurement).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from wfrun.storage.base import ObjectStore
from wfrun.storage.local import LocalStorage
from wfrun.storage.s3 import S3Config, S3Storage

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "wfrun-test-key"
SECRET_KEY = "wfrun-test-secret"
PREFIX = "tenant-a/"

_MOTO_CHILD = """
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes our stdin
server.stop()
"""


@pytest.fixture(scope="session")
def moto_child_endpoint() -> Iterator[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", _MOTO_CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    try:
        port = int(child.stdout.readline())
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stdin.close()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        child.stdout.close()


def s3_config(endpoint: str, **overrides: Any) -> S3Config:
    settings: dict[str, Any] = {
        "bucket": f"wfrun-{uuid.uuid4().hex[:16]}",
        "endpoint_url": endpoint,
        "prefix": PREFIX,
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET_KEY,
        **overrides,
    }
    return S3Config(**settings)


def count_requests(store: S3Storage) -> Callable[[], int]:
    """A counter of the HTTP requests ``store``'s client sends from now on."""
    sent: list[str] = []
    store.client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(request.url)
    )
    return lambda: len(sent)


@dataclass
class Backend:
    name: str
    store: ObjectStore
    touches: Callable[[], int]  # S3: requests sent; local: files under the root


async def _s3_backend(endpoint: str) -> S3Storage:
    store = S3Storage(s3_config(endpoint))
    await store.ensure_bucket()
    return store


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        root = tmp_path / "objects"
        yield Backend(
            "local",
            LocalStorage(root),
            lambda: sum(1 for _ in root.rglob("*")) if root.exists() else 0,
        )
    else:
        store = await _s3_backend(request.getfixturevalue("moto_endpoint"))
        yield Backend("s3", store, count_requests(store))


@pytest.fixture
def store(backend: Backend) -> ObjectStore:
    return backend.store


@pytest.fixture
async def s3_store(moto_endpoint: str) -> S3Storage:
    return await _s3_backend(moto_endpoint)


def raw_client(endpoint: str, region: str = "us-east-1") -> S3Client:
    """A plain boto3 client, independent of the store under test."""
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
