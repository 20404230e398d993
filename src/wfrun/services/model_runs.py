"""External model runs (``/model-runs/*``): a Seedance video task billed like a run.

A model run is a run (family ``model``) of wfrun's own system revision, whose manifest is the
contract's ``inputs{model, prompt, generation_category, first_frame, last_frame, images[],
videos[], audios[], duration, resolution, ratio, contains_real_person_material}``. So it is
frozen, dispatched, tracked, settled and cancelled by the same code as every other run; only
its idempotency scope differs (the API key, not the account and workflow) and its wire shape.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wfrun.clock import utcnow
from wfrun.config import SeedanceSettings
from wfrun.db import accounts as accounts_db
from wfrun.db import workflows as workflows_db
from wfrun.db.database import Connection, ConstraintViolated, Database
from wfrun.db.runs import Run
from wfrun.db.workflows import Revision
from wfrun.domain import manifest as m
from wfrun.domain.money import parse_amount
from wfrun.domain.runs import is_terminal
from wfrun.services import runs as run_service
from wfrun.services.accounts import Principal
from wfrun.services.run_views import fetch_run
from wfrun.services.runs import CancelResult, Policy, RunRequest, SubmitResult

SYSTEM_ACCOUNT = "user_" + "0" * 20
MODEL_RUN_WORKFLOW = "wf_" + "0" * 19 + "1"
MODEL_RUN_REVISION = "wfr_" + "0" * 19 + "1"
NODE = "1"

_SCALARS = (
    ("model", "string", True),
    ("prompt", "text", False),
    ("generation_category", "string", False),
    ("resolution", "string", False),
    ("ratio", "string", False),
    ("duration", "integer", False),
    ("generate_audio", "boolean", False),
    ("watermark", "boolean", False),
)
_MEDIA = (
    ("first_frame", "image", False, None),
    ("last_frame", "image", False, None),
    ("images", "image", True, 9),
    ("videos", "video", True, 3),
    ("audios", "audio", True, 3),
)


def manifest() -> tuple[m.InputSpec, ...]:
    """The model-run ``inputs`` as a manifest bound to the Seedance request's fields."""
    scalars = [
        m.InputSpec(key=k, type=t, binding=m.Binding(NODE, k), required=r) for k, t, r in _SCALARS
    ]
    media = [
        m.InputSpec(
            key=k,
            type=t,
            binding=m.Binding(NODE, k),
            multiple=multiple,
            max_items=most,
            max_size_bytes=30 * 1024 * 1024,
        )
        for k, t, multiple, most in _MEDIA
    ]
    return (*scalars, *media)


def _revision_values(config: SeedanceSettings) -> dict[str, Any]:
    return {
        "engine_kind": "seedance",
        "payload": {NODE: {"class_type": "SeedanceVideo", "inputs": {}}},
        "input_manifest": [m.input_to_json(s) for s in manifest()],
        "output_manifest": [
            m.output_to_json(m.OutputSpec(key="video", type="video", node_id=NODE))
        ],
        "prices": {
            "fixed_fee": parse_amount(config.model_run_fee),
            "price_per_second": 0,
            "estimated_seconds": 0,
            "external_estimate": 0,
            "may_incur_external_model_cost": True,
            "external_cost_notice": "Billed by the video's output tokens at Ark's prices.",
        },
        "timeout_seconds": config.execution_expires_after + 3600,
    }


async def ensure_catalog(db: Database, config: SeedanceSettings) -> None:
    """Create (or refresh the prices of) wfrun's system workflow that model runs belong to.
    Concurrent first submits race to create it; the losers find it made."""
    try:
        await _ensure_catalog(db, config)
    except ConstraintViolated:  # another submit created it first
        await _ensure_catalog(db, config)


def _stale(existing: Revision | None, values: dict[str, Any]) -> bool:
    if existing is None:
        return True
    return bool(
        (existing.prices, existing.timeout_seconds) != (values["prices"], values["timeout_seconds"])
    )


async def _ensure_catalog(db: Database, config: SeedanceSettings) -> None:
    values = _revision_values(config)
    async with db.transaction() as conn:  # the usual case: a read, no write lock
        if not _stale(await workflows_db.find_revision(conn, MODEL_RUN_REVISION), values):
            return
    async with db.transaction(write=True) as conn:
        existing = await workflows_db.find_revision(conn, MODEL_RUN_REVISION)
        if existing is not None:
            if _stale(existing, values):  # runs in flight settle their fee from their quote
                await workflows_db.update_revision(
                    conn,
                    MODEL_RUN_REVISION,
                    {"prices": values["prices"], "timeout_seconds": values["timeout_seconds"]},
                )
            return
        await _create_catalog(conn, values)


async def _create_catalog(conn: Connection, revision: dict[str, Any]) -> None:
    now = utcnow()
    await accounts_db.insert_account(
        conn, account_id=SYSTEM_ACCOUNT, display_name="wfrun system (model runs)", now=now
    )
    workflow = {
        "id": MODEL_RUN_WORKFLOW,
        "owner_id": SYSTEM_ACCOUNT,
        "slug": "model-runs-seedance",
        "title": "Seedance video (model run)",
        "description": "",
        "tags": [],
        "visibility": "system",
        "published_revision_id": MODEL_RUN_REVISION,
        "created_at": now,
        "updated_at": now,
    }
    await workflows_db.insert_workflow(conn, workflow)
    fixed = {"id": MODEL_RUN_REVISION, "workflow_id": MODEL_RUN_WORKFLOW, "number": 1}
    await workflows_db.insert_revision(
        conn, fixed | {"required_labels": {}, "package": {}, "created_at": now} | revision
    )


@dataclass(frozen=True)
class VideoSubmit:
    idempotency_key: str
    request_id: str
    inputs: Mapping[str, Any]
    callback_url: str | None = None
    max_cost: int | None = None


async def submit(
    db: Database,
    principal: Principal,
    body: VideoSubmit,
    policy: Policy,
    config: SeedanceSettings,
) -> SubmitResult:
    """Freeze and queue one Seedance task (idempotent per API key + key)."""
    await ensure_catalog(db, config)
    request = RunRequest(
        workflow_id=MODEL_RUN_WORKFLOW,
        revision_id=MODEL_RUN_REVISION,
        inputs=body.inputs,
        accept_external_cost_risk=False,
        idempotency_key=body.idempotency_key,
        idempotency_scope=principal.api_key_id,
        family="model",
        request_id=body.request_id,
        callback_url=body.callback_url,
        max_cost=body.max_cost,
    )
    return await run_service.submit_run(db, principal, request, policy)


async def get(db: Database, principal: Principal, run_id: str) -> Run:
    async with db.transaction() as conn:
        return await fetch_run(conn, principal, run_id, family="model")


async def cancel(
    db: Database, principal: Principal, run_id: str, *, wait_seconds: float
) -> CancelResult:
    """Cancel a model run: a queued one is released at once; one with an upstream task is
    cancelled upstream by the tracker, which this call waits for (up to ``wait_seconds``).
    A task that completed first comes back completed and settled normally."""
    result = await run_service.cancel_run(db, principal, run_id, family="model")
    deadline = time.monotonic() + wait_seconds
    run = result.run
    while not is_terminal(run.status) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        run = await get(db, principal, run_id)
    return CancelResult(run, result.outcome)
