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


PUBLIC_BASE = "https://wfrun.test"


def seedance_settings(standin: ArkStandin, group_id: str | None, **changes: Any) -> Any:
    from wfrun.config import SeedanceSettings

    values: dict[str, Any] = {
        "ark_base_url": standin.base_url,
        "ark_api_key": API_KEY,
        "request_timeout_seconds": 5.0,
        "control_host": standin.host,
        "control_scheme": "http",
        "access_key_id": standin.access_key,
        "secret_access_key": standin.secret_key,
        "real_person_group_id": group_id,
        "poll_min_seconds": 0.02,
        "poll_max_seconds": 0.1,
        "asset_ready_timeout_seconds": 5.0,
        "cancel_wait_seconds": 3.0,
    }
    values.update(changes)
    return SeedanceSettings(**values)


@pytest.fixture
def person_group(standin: ArkStandin) -> str:
    """A LivenessFace group: a real person passed verification and authorised the account
    (§4.3; the stand-in's own verification flow is exercised in test_ark_standin)."""
    return standin._new_group("verified person", "", "LivenessFace", "default").id


@pytest.fixture
def settings(
    database_url: str,
    tmp_path: Any,
    request: pytest.FixtureRequest,
    standin: ArkStandin,
    person_group: str,
) -> Any:
    """The root suite's settings (SQLite + local files, PostgreSQL + S3) with Seedance on the
    stand-in; links handed to Ark point at a public base URL (the stand-in does not fetch)."""
    from tests.conftest import make_settings

    endpoint = None
    if not database_url.startswith("sqlite"):
        endpoint = request.getfixturevalue("moto_endpoint")
    base = make_settings(database_url, tmp_path / "data", s3_endpoint=endpoint)
    return base.model_copy(
        update={
            "public_base_url": PUBLIC_BASE,
            "seedance": seedance_settings(standin, person_group),
            "worker": base.worker.model_copy(
                update={"retry_delay_seconds": 0.02, "busy_delay_seconds": 0.05}
            ),
        }
    )


async def dispatch_only(runtime: Any) -> None:
    """Claim and dispatch one run (its upstream task is created, the run parked), as a worker
    does before the tracker takes over."""
    from wfrun.workers.worker import Worker

    worker = Worker(runtime)
    await worker.register()
    assert await worker._claim_and_start() == "started"
    for active in list(worker._active.values()):
        await active.task
