"""Operator pages (accounts with the operator role only; anyone else gets a 404): accounts,
all runs, workflows and revisions, engine instances, the queue, webhook failures, the ledger."""

from __future__ import annotations

import json
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query
from starlette.datastructures import UploadFile
from starlette.responses import Response

from wfrun.clock import utcnow
from wfrun.domain.money import parse_amount
from wfrun.domain.runs import RunStatus, is_terminal
from wfrun.errors import InvalidParameter
from wfrun.services import (
    accounts,
    billing,
    catalog,
    console_auth,
    console_views,
    instances,
    operator,
)
from wfrun.web.context import Ctx, build_ctx
from wfrun.web.customer_pages import outputs_of, run_list
from wfrun.web.routing import PageRoute

router = APIRouter(prefix="/operator", route_class=PageRoute)
CtxDep = Annotated[Ctx, Depends(build_ctx)]
PAGE_SIZE = 50


@router.get("")
async def home(ctx: CtxDep) -> Response:
    ctx.operator()
    return ctx.redirect("/operator/accounts")


@router.get("/accounts")
async def accounts_page(
    ctx: CtxDep, q: Annotated[str | None, Query(max_length=200)] = None
) -> Response:
    ctx.operator()
    db = ctx.runtime.db
    found = await accounts.list_accounts(db)
    if q:
        needle = q.strip().lower()
        found = [a for a in found if needle in a.id.lower() or needle in a.display_name.lower()]
    operators = await console_auth.operator_ids(db)
    return ctx.page("op_accounts.html", accounts=found, operators=operators, q=q or "")


@router.get("/accounts/{account_id}")
async def account_page(ctx: CtxDep, account_id: str) -> Response:
    ctx.operator()
    return await _account(ctx, account_id)


async def _account(
    ctx: Ctx, account_id: str, *, invite_link: str | None = None, done: str | None = None
) -> Response:
    db = ctx.runtime.db
    account = await accounts.get_account(db, account_id)
    recharges, total = await billing.recharges(db, account_id, page=1, size=20)
    return ctx.page(
        "op_account.html",
        account=account,
        role=await console_auth.role_of(db, account_id),
        recharges=recharges,
        recharge_total=total,
        invite_link=invite_link,
        done=done,
        form_keys=(secrets.token_urlsafe(18), secrets.token_urlsafe(18)),
    )


@router.post("/accounts/{account_id}/topup")
async def top_up(
    ctx: CtxDep,
    account_id: str,
    amount: Annotated[str, Form(max_length=40)] = "",
    memo: Annotated[str, Form(max_length=500)] = "",
    form_key: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """A credit; the form's one-time key makes a double submit credit once."""
    ctx.operator()
    await ctx.check_csrf()
    minor = _amount(amount)
    await accounts.top_up(
        ctx.runtime.db,
        account_id=account_id,
        amount=minor,
        memo=memo,
        idempotency_key=_form_key("topup", form_key),
    )
    return ctx.redirect(f"/operator/accounts/{account_id}")


@router.post("/accounts/{account_id}/adjust")
async def adjust(
    ctx: CtxDep,
    account_id: str,
    amount: Annotated[str, Form(max_length=40)] = "",
    memo: Annotated[str, Form(max_length=500)] = "",
    form_key: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """A correction (signed: a credit or a debit), posted with its memo; never below zero;
    once per form (its one-time key)."""
    ctx.operator()
    await ctx.check_csrf()
    await operator.adjust_balance(
        ctx.runtime.db,
        account_id=account_id,
        amount=_amount(amount),
        memo=memo,
        idempotency_key=_form_key("adjust", form_key),
    )
    return ctx.redirect(f"/operator/accounts/{account_id}")


def _form_key(kind: str, form_key: str) -> str | None:
    """The idempotency key of a money form (None for a form without one: a script's post)."""
    return f"console-{kind}:{form_key}" if form_key.strip() else None


def _amount(text: str) -> int:
    try:
        return parse_amount(text)
    except (ValueError, TypeError) as exc:
        raise InvalidParameter(f"amount: {exc}") from None


@router.post("/accounts/{account_id}/invite")
async def invite(
    ctx: CtxDep, account_id: str, email: Annotated[str, Form(max_length=320)] = ""
) -> Response:
    ctx.operator()
    await ctx.check_csrf()
    made = await console_auth.invite(
        ctx.runtime.db, account_id=account_id, email=email, ttl=console_auth.INVITE_TTL
    )
    base = ctx.runtime.settings.public_base_url or str(ctx.request.base_url)
    link = base.rstrip("/") + console_auth.invite_path(made.token)
    return await _account(ctx, account_id, invite_link=link)


@router.get("/runs")
async def runs_page(
    ctx: CtxDep,
    account_id: Annotated[str | None, Query(max_length=64)] = None,
    workflow_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[RunStatus | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    ctx.operator()
    found = await console_views.all_runs(
        ctx.runtime.db,
        account_id=account_id or None,
        workflow_id=workflow_id or None,
        status=status.value if status else None,
        page=page,
        size=PAGE_SIZE,
    )
    filters = {
        "account_id": account_id or "",
        "workflow_id": workflow_id or "",
        "status": status.value if status else "",
    }
    return run_list(ctx, "op_runs.html", found, page, PAGE_SIZE, filters)


@router.get("/runs/{run_id}")
async def run_page(ctx: CtxDep, run_id: str) -> Response:
    """Any account's run: its facts, outputs, bill, refunds (and the refund form), logs."""
    ctx.operator()
    detail = await operator.describe_run(ctx.runtime.db, run_id)
    links = ctx.bridge.links(ctx.request, ctx.runtime)
    return ctx.page(
        "op_run.html",
        detail=detail,
        info=ctx.bridge.run_info(detail.run, links),
        outputs=outputs_of(detail.run.outputs, ctx.bridge.outputs(detail.run, links)),
        terminal=is_terminal(detail.run.status),
    )


@router.post("/runs/{run_id}/cancel")
async def cancel(ctx: CtxDep, run_id: str) -> Response:
    ctx.operator()
    await ctx.check_csrf()
    await console_views.cancel_any(ctx.runtime.db, run_id)
    return ctx.redirect("/operator/runs")


@router.post("/runs/{run_id}/refund")
async def refund(
    ctx: CtxDep,
    run_id: str,
    amount: Annotated[str, Form(max_length=40)] = "",
    memo: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Give back part (``amount``) or all (blank) of what the run was charged: a compensating
    ledger entry with the memo (the run's bill stays as it was)."""
    ctx.operator()
    await ctx.check_csrf()
    minor = _amount(amount) if amount.strip() else None
    await operator.refund_run(ctx.runtime.db, run_order_id=run_id, amount=minor, memo=memo)
    return ctx.redirect(f"/operator/runs/{run_id}")


@router.get("/workflows")
async def workflows_page(ctx: CtxDep, imported: str | None = None) -> Response:
    ctx.operator()
    db = ctx.runtime.db
    details = [await catalog.describe(db, w.id) for w in await catalog.list_all(db)]
    return ctx.page("op_workflows.html", details=details, imported=imported)


@router.post("/workflows/import")
async def import_package(ctx: CtxDep) -> Response:
    me = ctx.operator()
    await ctx.check_csrf()
    form = await ctx.request.form()
    document = await _package(form.get("package"))
    result = await catalog.import_package(
        ctx.runtime.db,
        owner_id=me.principal.account_id,
        document=document,
        publish=form.get("publish") == "on",
    )
    return ctx.redirect(f"/operator/workflows?imported={result.revision_id}")


async def _package(upload: object) -> object:
    if not isinstance(upload, UploadFile):
        raise InvalidParameter("package: choose a workflow package file (JSON)")
    try:
        return json.loads(await upload.read())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidParameter(f"package: not JSON ({exc})") from None


@router.post("/workflows/{workflow_id}/publish")
async def publish(
    ctx: CtxDep, workflow_id: str, revision_id: Annotated[str, Form(max_length=64)] = ""
) -> Response:
    ctx.operator()
    await ctx.check_csrf()
    await catalog.publish(ctx.runtime.db, workflow_id=workflow_id, revision_id=revision_id or None)
    return ctx.redirect("/operator/workflows")


@router.post("/workflows/{workflow_id}/unpublish")
async def unpublish(ctx: CtxDep, workflow_id: str) -> Response:
    """Off the market: new runs refused; runs in flight finish."""
    ctx.operator()
    await ctx.check_csrf()
    await operator.unpublish_workflow(ctx.runtime.db, workflow_id)
    return ctx.redirect("/operator/workflows")


@router.get("/revisions/{revision_id}")
async def revision_page(ctx: CtxDep, revision_id: str) -> Response:
    ctx.operator()
    found = await console_views.revision(ctx.runtime.db, revision_id)
    pretty = {
        "inputs": json.dumps(found.input_manifest, indent=2, ensure_ascii=False),
        "outputs": json.dumps(found.output_manifest, indent=2, ensure_ascii=False),
        "prices": json.dumps(found.prices, indent=2, ensure_ascii=False),
    }
    return ctx.page("op_revision.html", revision=found, pretty=pretty)


@router.get("/instances")
async def instances_page(ctx: CtxDep) -> Response:
    ctx.operator()
    return ctx.page("op_instances.html", instances=await instances.list_instances(ctx.runtime.db))


@router.post("/instances/{instance_id}/drain")
async def drain(
    ctx: CtxDep, instance_id: str, resume: Annotated[str, Form(max_length=8)] = ""
) -> Response:
    ctx.operator()
    await ctx.check_csrf()
    await instances.drain_instance(ctx.runtime.db, instance_id, resume=resume == "1")
    return ctx.redirect("/operator/instances")


@router.get("/queue")
async def queue_page(ctx: CtxDep) -> Response:
    ctx.operator()
    lanes = await console_views.lane_loads(ctx.runtime.db)
    now = utcnow()
    ages = {
        lane.lane: int((now - lane.oldest_waiting).total_seconds())
        for lane in lanes
        if lane.oldest_waiting is not None
    }
    return ctx.page("op_queue.html", lanes=lanes, ages=ages)


@router.get("/webhooks")
async def webhook_failures(ctx: CtxDep) -> Response:
    ctx.operator()
    failing = await console_views.failing_deliveries(ctx.runtime.db)
    return ctx.page("op_webhooks.html", deliveries=failing)


@router.get("/ledger")
async def ledger(ctx: CtxDep) -> Response:
    ctx.operator()
    problems = await console_views.ledger_check(ctx.runtime.db)
    return ctx.page("op_ledger.html", problems=problems)
