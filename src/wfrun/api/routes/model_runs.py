"""External model runs: Seedance video tasks billed like runs (open-api-v2.md §5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from wfrun.api import wire
from wfrun.api.contract.envelope import documented
from wfrun.api.contract.model_runs import ModelRunCancelData, ModelRunData, ModelRunSubmitData
from wfrun.api.deps import PrincipalDep, RuntimeDep, links
from wfrun.api.schemas import ModelRunCancelBody, VideoBody, idempotency_key
from wfrun.errors import InvalidParameter
from wfrun.services import model_runs

router = APIRouter(prefix="/model-runs", tags=["model runs"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid request or inputs"},
    401: {"description": "Missing or invalid API key"},
    402: {"description": "Insufficient balance; nothing frozen"},
    404: {"description": "Unknown model run"},
    422: {"description": "Idempotency key reused with a different request"},
    503: {"description": "The provider is not configured on this server"},
}


@router.post(
    "/videos",
    summary="Submit a Seedance video task (idempotent per API key)",
    **documented(ModelRunSubmitData, 402, 404, 422, 503),
)
async def videos(
    body: VideoBody, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    unknown = body.unknown_fields()
    if unknown:
        raise InvalidParameter(f"unknown field(s) in body: {', '.join(unknown)}")
    key = idempotency_key(body.idempotency_key)
    submit = model_runs.VideoSubmit(
        idempotency_key=key, request_id=body.request_id or key, inputs=body.merged_inputs()
    )
    result = await model_runs.submit(
        runtime.db, principal, submit, runtime.policy, runtime.settings.seedance
    )
    if not result.replay:
        runtime.wakeup.set()
    data = wire.model_run(result.run, links(request, runtime), replay=result.replay)
    return wire.ok(data, "提交成功")


@router.post(
    "/cancel",
    summary="Cancel a model run (upstream too); a task that finished first is settled",
    **documented(ModelRunCancelData, 404, 503),
)
async def cancel(
    body: ModelRunCancelBody, request: Request, runtime: RuntimeDep, principal: PrincipalDep
) -> dict[str, Any]:
    result = await model_runs.cancel(
        runtime.db,
        principal,
        body.run_id,
        wait_seconds=runtime.settings.seedance.cancel_wait_seconds,
    )
    data = wire.model_run(result.run, links(request, runtime))
    data["cancel_outcome"] = result.outcome
    cancelled = data["status"] == "cancelled"
    return wire.ok(data, "取消成功" if cancelled else "操作成功")


@router.get(
    "/info",
    summary="One model run: status, settlement, outputs, usage",
    **documented(ModelRunData, 404, 503),
)
async def info(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    run_id: str = Query(min_length=1, max_length=64),
) -> dict[str, Any]:
    run = await model_runs.get(runtime.db, principal, run_id)
    return wire.ok(wire.model_run(run, links(request, runtime)))
