"""Fixtures: a fresh Ark stand-in per test and SDK clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from volcenginesdkarkruntime import Ark  # type: ignore[import-untyped]

from tests.seedance.ark_standin import ArkStandin

API_KEY = "test-ark-key"


@pytest.fixture
def standin() -> Iterator[ArkStandin]:
    server = ArkStandin().launch()
    try:
        yield server
    finally:
        server.shutdown()


def make_client(standin: ArkStandin, *, max_retries: int = 0, api_key: str = API_KEY) -> Any:
    """An official-SDK client on the stand-in (``Ark(base_url=…/api/v3, api_key=…)``)."""
    return Ark(base_url=standin.base_url, api_key=api_key, max_retries=max_retries, timeout=5.0)


@pytest.fixture
def ark(standin: ArkStandin) -> Iterator[Any]:
    client = make_client(standin)
    try:
        yield client
    finally:
        client.close()
