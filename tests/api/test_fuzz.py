"""Schemathesis against the app's own OpenAPI document, on both databases: the real app on a
loopback port, a real API key, a fixed seed, bounded cases and time.

Every operation gets schema-valid (positive) and schema-breaking (negative) cases. Asserted:
no server error (no 5xx, except the 503s this server gives on purpose for a feature it is not
configured for, which must carry ``Retry-After``), and every non-2xx, non-3xx answer is chenyu's
envelope with ``status_code`` equal to the HTTP status. The figures are printed for the CI log.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.core.result import Ok

from tests.support.factories import customer, operator, publish_demo
from tests.support.server import LiveServer
from wfrun.config import Settings

SEED = 20261129
EXAMPLES = 12  # per operation and generation mode
BUDGET_SECONDS = 40.0  # per database, shared equally by the operations
CONFIGURATION_503 = {"REAL_PERSON_REGISTRATION_UNAVAILABLE"}
"""503s that say "this server is not configured for that" (no Ark asset control plane here)."""
EVENT_STREAM_PATH = "/workflow/run/events"
STREAM_SECONDS = 1.0
"""An accepted event stream never ends: schemathesis reads it for this long, then judges it."""
ENVELOPE_KEYS = {"reason", "detail", "engine_code", "status_code"}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Seedance enabled, so /model-runs/videos is served (no worker runs, so Ark is never
    called: the URL leads nowhere)."""
    settings.seedance.ark_api_key = "fuzz"
    settings.seedance.ark_base_url = "http://127.0.0.1:9/api/v3"
    return settings


@dataclass
class Figures:
    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    off_envelope: list[str] = field(default_factory=list)
    skipped: int = 0

    def line(self, dialect: str) -> str:
        statuses = ", ".join(f"{s}: {n}" for s, n in sorted(self.statuses.items()))
        return (
            f"\nfuzz[{dialect}]: {self.operations} operations, {self.cases} cases, "
            f"{len(self.server_errors)} server errors, {len(self.off_envelope)} off the "
            f"envelope, {self.skipped} cases past the time budget; statuses {{{statuses}}}\n"
        )


def _envelope_problem(response: requests.Response) -> str | None:
    try:
        body = json.loads(response.content)
        error = body["data"]["error"]
    except (ValueError, KeyError, TypeError):
        return f"not the envelope: {response.content[:200]!r}"
    if body.get("code") != 1 or set(error) != ENVELOPE_KEYS or body.get("msg") != error["reason"]:
        return f"not the envelope: {body}"
    if error["status_code"] != response.status_code:
        return f"status_code {error['status_code']} in a {response.status_code}"
    return None


def _server_error(response: requests.Response) -> bool:
    if response.status_code < 500:
        return False
    if response.status_code != 503 or "retry-after" not in response.headers:
        return True
    return _engine_code(response) not in CONFIGURATION_503


def _engine_code(response: requests.Response) -> str | None:
    try:
        code: str = json.loads(response.content)["data"]["error"]["engine_code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code


def _judge(figures: Figures, case: Any, response: requests.Response) -> None:
    figures.cases += 1
    figures.statuses[response.status_code] += 1
    what = (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {case.as_curl_command()}"
    )
    if _server_error(response):
        figures.server_errors.append(f"{what}\n  {response.content[:300]!r}")
    if response.status_code >= 400:
        problem = _envelope_problem(response)
        if problem is not None:
            figures.off_envelope.append(f"{what}\n  {problem}")


def _fuzz_operation(operation: Any, mode: GenerationMode, call: Any) -> None:
    @hypothesis.seed(SEED)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        call(case)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # nothing to break: no parameters, no body
        assert mode is GenerationMode.NEGATIVE


@dataclass
class _Caller:
    """Sends cases of one operation until its share of the time budget is spent."""

    session: requests.Session
    base_url: str
    headers: dict[str, str]
    figures: Figures
    until: float = 0.0

    def __call__(self, case: Any) -> None:
        if time.monotonic() > self.until:
            self.figures.skipped += 1
            return
        stream = case.path.endswith(EVENT_STREAM_PATH)
        response = case.call(
            base_url=self.base_url,
            session=self.session,
            headers=self.headers,
            timeout=STREAM_SECONDS if stream else 30,
        )
        _judge(self.figures, case, response)


def _operations(document: dict[str, Any]) -> list[Any]:
    found = []
    for result in schemathesis.openapi.from_dict(document).get_all_operations():
        assert isinstance(result, Ok), result.err()
        found.append(result.ok())
    return found


def fuzz(document: dict[str, Any], base_url: str, headers: dict[str, str]) -> Figures:
    """Runs in a thread (plain ``requests``) while the server serves on the test's loop. Each
    operation gets an equal share of the time budget; cases past it are generated, not sent."""
    operations = _operations(document)
    figures = Figures(operations=len(operations))
    share = BUDGET_SECONDS / len(operations)
    with requests.Session() as session:
        call = _Caller(session, base_url, headers, figures)
        for operation in operations:
            call.until = time.monotonic() + share
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                _fuzz_operation(operation, mode, call)
    return figures


async def test_the_openapi_document_survives_fuzzing(runtime, server: LiveServer, http, capsys):
    owner = await operator(runtime)
    await publish_demo(runtime, owner)
    alice = await customer(runtime, balance="1000")
    document = (await http.get("/openapi.json")).json()
    figures = await asyncio.to_thread(fuzz, document, server.base_url, alice.headers)
    with capsys.disabled():
        sys.stdout.write(figures.line("sqlite" if runtime.db.is_sqlite else "postgresql"))
    assert figures.server_errors == []
    assert figures.off_envelope == []
    assert figures.operations >= len(document["paths"])
