"""Run use cases on the API side: quote, submit, cancel, and the read views.

``submit_run`` is the one transaction of DESIGN.md §3: resolve the revision, validate, quote,
claim the idempotency key by constraint (never check-then-insert), freeze by conditional
update (then the queued-run cap), insert the run and its job: all of it exists after, or none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wfrun import ids
from wfrun.clock import utcnow
from wfrun.db import assets as assets_db
from wfrun.db import runs as runs_db
from wfrun.db import webhook_endpoints as webhook_endpoints_db
from wfrun.db import workflows as workflows_db
from wfrun.db.database import Connection, Database
from wfrun.db.runs import Run
from wfrun.db.workflows import WorkflowRevision
from wfrun.domain.failures import cancelled
from wfrun.domain.idempotency import fingerprint
from wfrun.domain.lanes import lane_key
from wfrun.domain.manifest import ValidatedInputs, validate_inputs
from wfrun.domain.pricing import Quote, quote, release
from wfrun.domain.revisions import RevisionSpec
from wfrun.domain.runs import FreezeStatus, RunStatus
from wfrun.domain.seedance import PriceBook, VideoRequest, bind_request, quote_cost
from wfrun.errors import (
    ExternalCostRiskNotAccepted,
    IdempotencyMismatch,
    NotPublished,
    ProviderNotConfigured,
    RealPersonUnavailable,
    RevisionNotFound,
    WorkflowNotFound,
)
from wfrun.queue import broker
from wfrun.services import billing, real_person, spending
from wfrun.services.accounts import Principal
from wfrun.services.assets import check_asset_refs
from wfrun.services.catalog import revision_spec
from wfrun.services.limits import LimitBook, check_queued_runs
from wfrun.services.run_changes import publish_change
from wfrun.services.run_endings import Ending, end_run
from wfrun.services.run_log import log_event
from wfrun.services.run_views import fetch_run


@dataclass(frozen=True)
class RunRequest:
    """A submit (or quote) request as parsed from the wire."""

    workflow_id: str
    revision_id: str | None
    inputs: Mapping[str, Any]
    accept_external_cost_risk: bool = False
    idempotency_key: str = ""
    idempotency_scope: str = ""
    """``""`` for workflow runs (account + workflow + key); the API key id for model runs."""
    family: str = "workflow"
    request_id: str | None = None
    """The caller's own request id (model runs), kept with the run."""
    callback_url: str | None = None
    """Where this run's changes are POSTed (signed with the account's default webhook
    secret); checked against the address policy before submit. Not part of the fingerprint."""
    max_cost: int | None = None  # the most the run may be charged (services.spending)

    def fingerprint(self) -> str:
        return fingerprint(
            {
                "workflow_id": self.workflow_id,
                "revision_id": self.revision_id,
                "inputs": dict(self.inputs),
                "accept_external_cost_risk": self.accept_external_cost_risk,
            }
        )


@dataclass(frozen=True)
class Policy:
    """Operator settings the submit path obeys."""

    require_external_cost_consent: bool = False
    max_attempts: int = 3
    seedance_prices: PriceBook = field(default_factory=lambda: PriceBook({}, {}))
    real_person_enabled: bool = False
    """The asset control plane (AK/SK) is configured."""
    real_person_default_group: str | None = None
    """The group of accounts that verified no person of their own."""
    seedance_enabled: bool = False
    max_queue_seconds: float = 3600.0
    """A run not started this long after its submit fails ``QUEUE_TIMEOUT`` (a package may
    set a lower limit)."""
    credit_limit: int = 0  # how far below zero a run may take the balance
    limits: LimitBook | None = None  # per-account caps (the queued-run cap holds at submit)


@dataclass(frozen=True)
class QuoteResult:
    workflow_id: str
    revision_id: str
    quote: Quote
    spec: RevisionSpec


@dataclass(frozen=True)
class SubmitResult:
    run: Run
    replay: bool


async def _resolve(
    conn: Connection, principal: Principal, request: RunRequest
) -> tuple[WorkflowRevision, RevisionSpec]:
    row = await workflows_db.find_for_submit(
        conn,
        account_id=principal.account_id,
        workflow_id=request.workflow_id,
        revision_id=request.revision_id,
        system=request.family == "model",
    )
    if row is None:
        raise await _why_unresolved(conn, principal, request)
    return row, revision_spec(row)


async def _why_unresolved(conn: Connection, principal: Principal, request: RunRequest) -> Exception:
    workflow = await workflows_db.find_workflow(conn, request.workflow_id)
    visible = workflow is not None and (
        workflow.visibility == "public" or workflow.owner_id == principal.account_id
    )
    if not visible:
        return WorkflowNotFound(f"workflow {request.workflow_id} does not exist")
    assert workflow is not None
    retired = workflow.archived_at is not None or (
        workflow.published_revision_id is None and workflow.owner_id != principal.account_id
    )
    if request.revision_id is not None and not retired:
        return RevisionNotFound(
            f"revision {request.revision_id} is not a revision of workflow {request.workflow_id}"
        )
    return NotPublished(f"workflow {request.workflow_id} has no published revision")


def video_request(
    spec: RevisionSpec, validated: ValidatedInputs, inputs: Mapping[str, Any]
) -> VideoRequest:
    """The Seedance request a ``seedance`` revision makes for these inputs."""
    bindings = {s.key: s.binding.input_name for s in spec.inputs}
    real_person = inputs.get("contains_real_person_material") is True
    return bind_request(spec.payload, bindings, validated.values, real_person=real_person)


def _price(
    spec: RevisionSpec, request: RunRequest, policy: Policy, validated: ValidatedInputs
) -> Quote:
    """The quote, after the operator's consent rule: flat per revision, or for ``seedance``
    the platform fee plus the most the requested video can cost at Ark's token prices."""
    prices = spec.prices
    if (
        prices.may_incur_external_model_cost
        and policy.require_external_cost_consent
        and not request.accept_external_cost_risk
        and request.family != "model"  # asking for an external model run is the consent
    ):
        raise ExternalCostRiskNotAccepted(
            "this workflow may incur external model cost; resubmit with "
            "accept_external_cost_risk: true"
        )
    if spec.engine_kind != "seedance":
        return quote(prices)
    if not policy.seedance_enabled:
        raise ProviderNotConfigured(
            "Seedance runs on Volcengine Ark, and this server has no Ark API key "
            "(seedance.ark_api_key); nothing was frozen"
        )
    video = video_request(spec, validated, request.inputs)
    book = policy.seedance_prices.overridden(prices.token_prices)
    return Quote(compute=prices.fixed_fee, external=quote_cost(book, video))


async def _check_real_person(
    conn: Connection,
    principal: Principal,
    spec: RevisionSpec,
    request: RunRequest,
    policy: Policy,
) -> None:
    """Real-person material goes into a verified person's group: the account's own, else the
    server's default; without one the run could only fail, so it is refused here."""
    wanted = request.inputs.get("contains_real_person_material") is True
    if spec.engine_kind != "seedance" or not wanted:
        return
    if not policy.real_person_enabled:
        raise RealPersonUnavailable(
            "contains_real_person_material is true but this server has no real-person material "
            "registration configured (seedance.access_key_id and seedance.secret_access_key)"
        )
    if policy.real_person_default_group:
        return
    if await real_person.group_for(conn, principal.account_id) is None:
        raise RealPersonUnavailable(
            "contains_real_person_material is true but no person of this account has passed "
            "real-person verification (POST /real-person/verifications)"
        )


async def quote_run(
    db: Database, principal: Principal, request: RunRequest, policy: Policy
) -> QuoteResult:
    """Validate and price a request without side effects."""
    async with db.transaction() as conn:
        row, spec = await _resolve(conn, principal, request)
        validated = validate_inputs(spec.inputs, request.inputs)
        await check_asset_refs(conn, principal, spec.inputs, validated, utcnow())
        quoted = _price(spec, request, policy, validated)
        await _check_real_person(conn, principal, spec, request, policy)
    return QuoteResult(row.id, spec.revision_id, quoted, spec)


async def submit_run(
    db: Database, principal: Principal, request: RunRequest, policy: Policy
) -> SubmitResult:
    """Submit one paid run (idempotent per account + workflow + key).

    The key is looked up first: resending a request answers its original run whatever has
    changed since (an expired ``asset://`` input, a newer revision, a lower balance).

    Raises:
        WorkflowNotFound | RevisionNotFound | NotPublished: nothing to run.
        InvalidWorkflowInput: inputs do not match the manifest (detail names the input).
        IdempotencyMismatch: the key was used for a different request.
        InsufficientBalance: available balance does not cover the quote; nothing frozen.
    """
    now = utcnow()
    async with db.transaction(write=True) as conn:
        existing = await _replay(conn, principal, request)
        if existing is not None:
            return SubmitResult(existing, replay=True)
        stored = await _insert_new(conn, principal, request, policy, now)
        if stored is None:  # a concurrent submit with this key committed first
            existing = await _replay(conn, principal, request)
            assert existing is not None, "the conflicting run is visible once it committed"
            return SubmitResult(existing, replay=True)
    return SubmitResult(stored, replay=False)


async def _insert_new(
    conn: Connection, principal: Principal, request: RunRequest, policy: Policy, now: datetime
) -> Run | None:
    """Validate, quote, freeze and enqueue a new run; None when its key was taken meanwhile."""
    row, spec = await _resolve(conn, principal, request)
    validated = validate_inputs(spec.inputs, request.inputs)
    priced = _price(spec, request, policy, validated)
    await _check_real_person(conn, principal, spec, request, policy)
    asset_ids = await check_asset_refs(conn, principal, spec.inputs, validated, now)
    caps = spending.run_columns(principal, request.max_cost, policy.credit_limit, now)
    run = _new_run(principal, request, row, priced, now) | caps
    stored = await runs_db.insert_run_claiming_key(conn, run)
    if stored is None:
        return None
    await spending.reserve(conn, principal, stored, priced.total)  # and max_cost
    await assets_db.link_run(conn, stored.id, asset_ids)
    await billing.freeze(
        conn, account_id=principal.account_id, run_id=stored.id, amount=priced.total, now=now
    )
    await check_queued_runs(conn, principal.account_id, policy.limits)  # under the account lock
    await broker.enqueue(
        conn,
        run_id=stored.id,
        kind=broker.DISPATCH_RUN,
        max_attempts=policy.max_attempts,
        now=now,
        placement=_placement(principal, spec, policy, now),
    )
    if request.callback_url is not None:
        await webhook_endpoints_db.set_callback(conn, stored.id, request.callback_url)
    await publish_change(conn, stored, previous=None, now=now)
    return stored


def _placement(
    principal: Principal, spec: RevisionSpec, policy: Policy, now: datetime
) -> broker.Placement:
    """The run's lane, account and queue deadline (the server's or the package's, lower)."""
    limit = policy.max_queue_seconds
    if spec.max_queue_seconds is not None:
        limit = min(limit, spec.max_queue_seconds)
    return broker.Placement(
        lane=lane_key(spec.engine_kind, spec.required_labels),
        account_id=principal.account_id,
        start_by=now + timedelta(seconds=limit),
    )


def _new_run(
    principal: Principal,
    request: RunRequest,
    workflow: WorkflowRevision,
    priced: Quote,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": ids.new_model_run_id() if request.family == "model" else ids.new_run_id(),
        "account_id": principal.account_id,
        "workflow_id": request.workflow_id,
        "revision_id": workflow.revision_id,
        "api_key_id": principal.api_key_id,
        "idempotency_key": request.idempotency_key,
        "idempotency_scope": request.idempotency_scope,
        "family": request.family,
        "request_fingerprint": request.fingerprint(),
        "title": workflow.title,
        "inputs": dict(request.inputs),
        "accept_external_cost_risk": request.accept_external_cost_risk,
        "status": RunStatus.QUEUED,
        "attempt": 0,
        "quote_amount": priced.total,
        "quote_external": priced.external,
        "task_id": ids.new_task_id(),
        "prompt_id": ids.new_prompt_id(),
        "billing_run_id": ids.new_billing_id(),
        "progress_percent": 0,
        "provider_state": {"request_id": request.request_id} if request.request_id else None,
        "freeze_status": FreezeStatus.FROZEN,
        "created_at": now,
        "updated_at": now,
    }


async def _replay(conn: Connection, principal: Principal, request: RunRequest) -> Run | None:
    """The run this key already made, or None; a different request under the key is refused."""
    existing = await runs_db.find_by_idempotency(
        conn,
        account_id=principal.account_id,
        workflow_id=request.workflow_id,
        key=request.idempotency_key,
        scope=request.idempotency_scope,
    )
    if existing is None:
        return None
    if existing.request_fingerprint != request.fingerprint():
        raise IdempotencyMismatch(
            f"idempotency_key {request.idempotency_key!r} was already used for run "
            f"{existing.id} with a different request"
        )
    return existing


# ---- cancel ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CancelResult:
    run: Run
    outcome: str
    """``cancelled`` (was queued, released now), ``cancel_requested`` (running; stops at the
    next node boundary), ``already_cancelled``, ``already_requested`` or ``already_finished``."""


async def cancel_run(
    db: Database, principal: Principal, run_id: str, *, family: str = "workflow"
) -> CancelResult:
    """Cancel the caller's run. Its jobs are locked before the run is read (lock order
    job → run → freeze → account), so the outcome is decided on the run as it really is: a
    worker that holds the run finishes first, or waits for this cancel."""
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await broker.lock_for_run(conn, run_id)
        run = await fetch_run(conn, principal, run_id, family=family)
        if run.status is RunStatus.QUEUED:
            ended = await end_run(conn, run, _cancelled_queued(run), now=now)
            assert ended is not None, "the run's jobs are locked: nothing else moved it"
            return CancelResult(ended, "cancelled")
        if run.status is RunStatus.RUNNING:
            return await _request_cancel(conn, run, now)
    outcome = "already_cancelled" if run.status is RunStatus.CANCELLED else "already_finished"
    return CancelResult(run, outcome)


async def _request_cancel(conn: Connection, run: Run, now: datetime) -> CancelResult:
    if run.cancel_requested_at is not None:
        return CancelResult(run, "already_requested")
    await runs_db.request_cancel(conn, run.id, now)
    await log_event(conn, run, now, "cancel_requested", "cancellation requested")
    await broker.expedite(conn, run.id, now)  # a parked provider run: act now
    await broker.wake_jobs(conn, [run.id], now)  # one waiting for a retry or its instance
    requested = await runs_db.find_run(conn, run.id)
    assert requested is not None
    return CancelResult(requested, "cancel_requested")


def _cancelled_queued(run: Run) -> Ending:
    return Ending(
        RunStatus.CANCELLED,
        release(run.quote_amount),
        "cancelled while queued; freeze released",
        cancelled("cancelled before it started; the whole freeze was released"),
    )
