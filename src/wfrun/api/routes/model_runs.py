"""External model runs: Seedance video tasks billed like runs (open-api-v2.md §5)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response

from wfrun.api import prefer, wire
from wfrun.api.contract.envelope import documented
from wfrun.api.contract.model_runs import ModelRunCancelData, ModelRunData, ModelRunSubmitData
from wfrun.api.contract.requests import PREFER_WAIT, PREFERENCE_APPLIED
from wfrun.api.deps import PrincipalDep, RuntimeDep, callback_url, links
from wfrun.api.schemas import ModelRunCancelBody, VideoBody, idempotency_key, max_cost
from wfrun.errors import InvalidParameter
from wfrun.services import model_runs

router = APIRouter(prefix="/model-runs", tags=["model runs"])


@router.post(
    "/videos",
    summary="Submit a Seedance video task (idempotent per API key)",
    description=(
        "With the request header `Prefer: wait=N` (N ≤ 60) the answer comes when the task "
        "ends or after N seconds, with `data.execution` (its `run/execution` view)."
    ),
    **documented(
        ModelRunSubmitData,
        402,
        404,
        422,
        503,
        parameters=[PREFER_WAIT],
        headers=PREFERENCE_APPLIED,
    ),
)
async def videos(
    body: VideoBody,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    wait = prefer.wait_seconds(request.headers.get(prefer.HEADER))
    unknown = body.unknown_fields()
    if unknown:
        raise InvalidParameter(f"unknown field(s) in body: {', '.join(unknown)}")
    key = idempotency_key(body.idempotency_key)
    submit = model_runs.VideoSubmit(
        idempotency_key=key,
        request_id=body.request_id or key,
        inputs=body.merged_inputs(),
        callback_url=callback_url(body.callback_url, runtime),
        max_cost=max_cost(body.max_cost),
    )
    result = await model_runs.submit(
        runtime.db, principal, submit, runtime.policy, runtime.settings.seedance
    )
    if not result.replay:
        runtime.wakeup.set()
    if wait is None:
        data = wire.model_run(result.run, links(request, runtime), replay=result.replay)
        return wire.ok(data, "提交成功")
    view = await prefer.wait_for_end(
        runtime, principal, result.run.id, seconds=wait, family="model"
    )
    response.headers[prefer.APPLIED] = f"wait={wait}"
    data = wire.model_run(view.run, links(request, runtime), replay=result.replay)
    data["execution"] = wire.execution(view, links(request, runtime))
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
