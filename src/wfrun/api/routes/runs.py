"""Workflow runs: submit (optionally waiting), quote, cancel, list, info, execution, and the
live event stream."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from wfrun.api import live, prefer, wire
from wfrun.api.contract.envelope import documented, event_stream
from wfrun.api.contract.requests import (
    LAST_EVENT_ID,
    PAGE_OR_CURSOR,
    PREFER_WAIT,
    PREFERENCE_APPLIED,
)
from wfrun.api.contract.runs import (
    CancelData,
    ExecutionData,
    QuoteData,
    RunInfoData,
    RunPage,
    SubmitData,
)
from wfrun.api.deps import PageSize, PrincipalDep, RuntimeDep, callback_url, links
from wfrun.api.schemas import CancelBody, QuoteBody, SubmitBody, idempotency_key, max_cost
from wfrun.domain.runs import RunStatus
from wfrun.errors import InvalidParameter
from wfrun.services import run_stream, run_views, runs, spending

router = APIRouter(prefix="/workflow/run", tags=["runs"])
CURSOR_MAX_LENGTH = 512


def _request(body: QuoteBody, key: str = "", callback_url: str | None = None) -> runs.RunRequest:
    unknown = body.unknown_fields()
    if unknown:
        raise InvalidParameter(f"unknown field(s) in body: {', '.join(unknown)}")
    return runs.RunRequest(
        workflow_id=body.workflow_id,
        revision_id=body.revision_id,
        inputs=body.merged_inputs(),
        accept_external_cost_risk=body.accept_external_cost_risk,
        max_cost=max_cost(body.max_cost),
        idempotency_key=key,
        callback_url=callback_url,
    )


@router.post(
    "/submit",
    summary="Submit a paid run (idempotent)",
    description=(
        "With the request header `Prefer: wait=N` (N ≤ 60) the answer comes when the run "
        "ends or after N seconds, and `data.execution` holds its `run/execution` view "
        "(response header `Preference-Applied: wait=N`)."
    ),
    **documented(
        SubmitData, 402, 404, 409, 422, parameters=[PREFER_WAIT], headers=PREFERENCE_APPLIED
    ),
)
async def submit(
    body: SubmitBody,
    request: Request,
    response: Response,
    runtime: RuntimeDep,
    principal: PrincipalDep,
) -> dict[str, Any]:
    wait = prefer.wait_seconds(request.headers.get(prefer.HEADER))
    callback = callback_url(body.callback_url, runtime)
    run_request = _request(body, idempotency_key(body.idempotency_key), callback)
    result = await runs.submit_run(runtime.db, principal, run_request, runtime.policy)
    if not result.replay:
        runtime.wakeup.set()
    if wait is None:
        return wire.ok(wire.submit_data(result.run, result.replay), "提交成功")
    view = await prefer.wait_for_end(
        runtime, principal, result.run.id, seconds=wait, family="workflow"
    )
    response.headers[prefer.APPLIED] = f"wait={wait}"
    data = wire.submit_data(view.run, result.replay)
    data["execution"] = wire.execution(view, links(request, runtime))
    return wire.ok(data, "提交成功")


@router.post(
    "/quote",
    summary="Validate inputs and price a run, without side effects",
    **documented(QuoteData, 404, 409),
)
async def quote(body: QuoteBody, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    result = await runs.quote_run(runtime.db, principal, _request(body), runtime.policy)
    spending.check_max_cost(max_cost(body.max_cost), result.quote.total)
    return wire.ok(
        wire.quote_data(result.workflow_id, result.revision_id, result.spec.prices, result.quote)
    )


@router.post(
    "/cancel",
    summary="Cancel a queued or running run (idempotent)",
    **documented(CancelData, 404, 409),
)
async def cancel(body: CancelBody, runtime: RuntimeDep, principal: PrincipalDep) -> dict[str, Any]:
    result = await runs.cancel_run(runtime.db, principal, body.run_order_id)
    run = result.run
    data = {
        "run_order_id": run.id,
        "run_status": run.status,
        "freeze_status": run.freeze_status,
        "cancel_outcome": result.outcome,
        "released_amount": None
        if run.released_amount is None
        else wire.format_amount(run.released_amount),
    }
    msg = "取消成功" if result.outcome in ("cancelled", "cancel_requested") else "操作成功"
    return wire.ok(data, msg)


@router.get("/list", summary="The caller's runs, newest first", **documented(RunPage))
async def run_list(
    runtime: RuntimeDep,
    principal: PrincipalDep,
    workflow_id: str | None = Query(None, max_length=64),
    run_status: RunStatus | None = None,
    status: RunStatus | None = None,
    page: int | None = Query(None, ge=1, le=1_000_000, description=PAGE_OR_CURSOR),
    page_size: PageSize = 20,
    cursor: str | None = Query(None, min_length=1, max_length=CURSOR_MAX_LENGTH),
) -> Response:
    wanted = run_status or status
    found = await run_views.list_runs(
        runtime.db,
        principal,
        workflow_id=workflow_id,
        status=wanted.value if wanted else None,
        page=page,
        size=page_size,
        cursor=cursor,
    )
    data = wire.run_page(found, None if cursor else page or 1, page_size)
    return JSONResponse(wire.ok(data))  # JSON types only: skips FastAPI's jsonable_encoder


@router.get("/info", summary="Billing view of one run", **documented(RunInfoData, 404))
async def run_info(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    run_order_id: str = Query(min_length=1, max_length=64),
) -> dict[str, Any]:
    run = await run_views.get_run(runtime.db, principal, run_order_id)
    return wire.ok(wire.run_info(run, links(request, runtime)))


@router.get(
    "/execution",
    summary="Live view: status, queue, progress, logs, outputs",
    **documented(ExecutionData, 404),
)
async def run_execution(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    run_order_id: str = Query(min_length=1, max_length=64),
) -> dict[str, Any]:
    view = await run_views.get_execution(
        runtime.db,
        principal,
        run_order_id,
        lease_seconds=runtime.settings.worker.lease_seconds,
        running_cap=runtime.limits.limits_of(principal.account_id).max_running_runs,
    )
    return wire.ok(wire.execution(view, links(request, runtime)))


@router.get(
    "/events",
    summary="Live event stream of one run, or of every run of the account (SSE)",
    description=(
        "`text/event-stream`: events `status`, `progress`, `log`, `output`, `done` (data: "
        "JSON; `done` carries the run's `run/info` data, then a one-run stream ends). `id:` "
        "increases; resume with the `Last-Event-ID` header or `last_event_id`. A "
        "`: keepalive` comment every 15 s. At most `live.max_streams_per_key` open streams "
        "per API key (429 `TOO_MANY_STREAMS`)."
    ),
    **event_stream(
        "`text/event-stream`: events `status`, `progress`, `log`, `output`, `done` (data: "
        "JSON; `done` carries the run's `run/info` data, then a one-run stream ends)",
        404,
        429,
        parameters=[LAST_EVENT_ID],
    ),
)
async def run_events(
    request: Request,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    run_order_id: str | None = Query(None, min_length=1, max_length=64),
    last_event_id: str | None = Query(None, max_length=64),
) -> live.EventStream:
    after = live.parse_last_event_id(request.headers.get("last-event-id"), last_event_id)
    if run_order_id is not None:
        await run_stream.find_run(runtime.db, principal, run_order_id)
    key = principal.api_key_id
    runtime.live.open_stream(key, runtime.settings.live.max_streams_per_key)
    stream = live.StreamRequest(runtime, principal, run_order_id, after, links(request, runtime))
    return live.EventStream(live.events(stream), runtime, lambda: runtime.live.close_stream(key))
