"""Customer pages: the market, a workflow's form, submit, a run (live), the run history."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from wfrun.db.runs import Run
from wfrun.db.workflows import WorkflowRevision
from wfrun.domain.runs import RunStatus, is_terminal
from wfrun.errors import NotPublished, ServiceError
from wfrun.services import catalog, run_views, runs
from wfrun.web import forms
from wfrun.web.context import Ctx, build_ctx
from wfrun.web.routing import PageRoute

router = APIRouter(route_class=PageRoute)
CtxDep = Annotated[Ctx, Depends(build_ctx)]
PAGE_SIZE = 20
STATUSES = [s.value for s in RunStatus]


@router.get("/")
async def market(
    ctx: CtxDep,
    keyword: Annotated[str | None, Query(max_length=100)] = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    me = ctx.user()
    items, _ = await catalog.market_page(
        ctx.runtime.db,
        account_id=me.principal.account_id,
        keyword=keyword or None,
        tag=tag or None,
        page=1,
        size=100,
    )
    cards = [ctx.bridge.market_item(item) for item in items]
    return ctx.page("market.html", cards=cards, keyword=keyword or "", tag=tag or "")


@router.get("/workflows/{workflow_id}")
async def workflow_page(ctx: CtxDep, workflow_id: str) -> Response:
    me = ctx.user()
    row = await catalog.market_info(
        ctx.runtime.db, account_id=me.principal.account_id, workflow_id=workflow_id
    )
    return _form_page(ctx, row)


def _form_page(
    ctx: Ctx, row: WorkflowRevision, error: ServiceError | None = None, values: Any = None
) -> Response:
    """The workflow's form; after a refused submit, with the error in words and the values
    sent (a fresh idempotency key: the refused request created nothing)."""
    spec = catalog.revision_spec(row)
    return ctx.page(
        "workflow.html",
        http_status=200 if error is None else ctx.bridge.status_for(type(error)),
        info=ctx.bridge.market_info(row),
        fields=forms.fields(spec.inputs),
        idempotency_key=f"console-{secrets.token_hex(12)}",
        revision_id=row.revision_id,
        error=error,
        values=values or {},
    )


@router.post("/workflows/{workflow_id}/run")
async def submit(ctx: CtxDep, workflow_id: str) -> Response:
    me = ctx.user()
    await ctx.check_csrf()
    form = await ctx.request.form()
    row = await catalog.market_info(
        ctx.runtime.db, account_id=me.principal.account_id, workflow_id=workflow_id
    )
    key, shown = form.get("idempotency_key"), form.get("revision_id")
    try:
        if shown != row.revision_id:  # the customer pays for what the page showed, or nothing
            raise NotPublished(
                f"revision {str(shown or '')[:64] or '(none)'} shown on the page is no longer "
                f"published; this is the current form of workflow {workflow_id}: check it and "
                "its price, then run again"
            )
        request = forms.run_request(
            form, row, key if isinstance(key, str) and key else secrets.token_hex(12)
        )
        result = await runs.submit_run(ctx.runtime.db, me.principal, request, ctx.runtime.policy)
    except ServiceError as exc:
        return _form_page(ctx, row, exc, {k: v for k, v in form.items() if isinstance(v, str)})
    if not result.replay:
        ctx.runtime.wakeup.set()
    return ctx.redirect(f"/runs/{result.run.id}")


@router.get("/runs/{run_id}")
async def run_page(ctx: CtxDep, run_id: str) -> Response:
    me = ctx.user()
    view = await run_views.get_execution(
        ctx.runtime.db,
        me.principal,
        run_id,
        lease_seconds=ctx.runtime.settings.worker.lease_seconds,
        running_cap=ctx.runtime.limits.limits_of(me.principal.account_id).max_running_runs,
    )
    links = ctx.bridge.links(ctx.request, ctx.runtime)
    info = ctx.bridge.run_info(view.run, links)
    return ctx.page(
        "run.html",
        view=view,
        info=info,
        outputs=outputs_of(view.run.outputs, ctx.bridge.outputs(view.run, links)),
        progress=_progress(view),
        terminal=is_terminal(view.run.status),
        words={status: ctx.t(f"status_{status}") for status in STATUSES}
        | {"_lost": ctx.t("stream_lost")},
    )


def _progress(view: run_views.ExecutionView) -> int:
    if view.run.status is RunStatus.SUCCEEDED:
        return 100
    percents = [e.progress_percent for e in view.events if e.progress_percent is not None]
    return int(percents[-1]) if percents else 0


def outputs_of(stored: dict[str, Any] | None, wire: dict[str, Any]) -> list[dict[str, Any]]:
    """Each output as ``{key, type, values}`` (values: URLs for media, strings for text)."""
    shown = []
    for key, value in wire.items():
        kind = (stored or {}).get(key, {}).get("type", "text")
        values = value if isinstance(value, list) else [value]
        shown.append({"key": key, "type": kind, "values": [v for v in values if v is not None]})
    return shown


@router.post("/runs/{run_id}/cancel")
async def cancel(ctx: CtxDep, run_id: str) -> Response:
    me = ctx.user()
    await ctx.check_csrf()
    await runs.cancel_run(ctx.runtime.db, me.principal, run_id)
    return ctx.redirect(f"/runs/{run_id}")


@router.get("/runs")
async def run_history(
    ctx: CtxDep,
    status: Annotated[RunStatus | None, Query()] = None,
    workflow_id: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    me = ctx.user()
    found = await run_views.list_runs(
        ctx.runtime.db,
        me.principal,
        workflow_id=workflow_id or None,
        status=status.value if status else None,
        page=page,
        size=PAGE_SIZE,
    )
    filters = {"status": status.value if status else "", "workflow_id": workflow_id or ""}
    return run_list(ctx, "runs.html", (found.runs, found.total), page, PAGE_SIZE, filters)


def run_list(
    ctx: Ctx,
    template: str,
    found: tuple[list[Run], int],
    page: int,
    size: int,
    filters: dict[str, str],
) -> Response:
    """A page of runs (each as its ``run/info`` data, with its account), under filters."""
    rows, total = found
    links = ctx.bridge.links(ctx.request, ctx.runtime)
    values: dict[str, Any] = {
        "runs": [(run.account_id, ctx.bridge.run_info(run, links)) for run in rows],
        "total": total,
        "page": page,
        "pages": max(1, -(-total // size)),
        "statuses": STATUSES,
        **filters,
    }
    return ctx.page(template, **values)
