"""Run use cases on the API side: quote, submit, cancel, and the read views.

``submit_run`` is the one transaction of DESIGN.md §3: look the key up (a replay answers the
original run), resolve the revision, validate, quote, then write: claim the idempotency key by
constraint (never check-then-insert), insert the run, its freeze, ledger entry and dispatch
job, and freeze the balance by conditional update — the account row last, just before COMMIT
(issue 17: on PostgreSQL all the writes are one statement, ``queue.submission``); a limited
key's spend counter is reserved before it and the queued-run cap checked after it (lock
order). Either all of it exists afterwards or none of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
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
from wfrun.domain.idempotency import fingerprint
from wfrun.domain.lanes import lane_key
from wfrun.domain.manifest import ValidatedInputs, validate_inputs
from wfrun.domain.pricing import Quote, quote
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
    SpendLimitExceeded,
    WorkflowNotFound,
)
from wfrun.queue import broker, submission
from wfrun.services import billing, real_person, spending
from wfrun.services.accounts import Principal
from wfrun.services.assets import check_asset_refs
from wfrun.services.catalog import revision_spec
from wfrun.services.limits import LimitBook, check_queued_runs
from wfrun.services.run_cancel import CancelResult, cancel_run
from wfrun.services.run_changes import announce_change, change_row

__all__ = ["CancelResult", "cancel_run"]  # moved to services.run_cancel; importable from here


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
    try:
        async with db.transaction(write=True) as conn:
            existing = await _replay(conn, principal, request)
            if existing is not None:
                return SubmitResult(existing, replay=True)
            stored = await _insert_new(conn, principal, request, policy, now)
        return SubmitResult(stored, replay=False)
    except (_KeyTaken, SpendLimitExceeded) as refused:
        # a concurrent submit with this key committed first (its reservation may be what
        # left ours no room); ours rolled back
        async with db.transaction() as conn:
            existing = await _replay(conn, principal, request)
        if existing is None and isinstance(refused, SpendLimitExceeded):
            raise
        assert existing is not None, "the conflicting run is visible once it committed"
        return SubmitResult(existing, replay=True)


class _KeyTaken(Exception):
    """The idempotency key was claimed by a concurrent submit between our lookup and insert."""


async def _insert_new(
    conn: Connection, principal: Principal, request: RunRequest, policy: Policy, now: datetime
) -> Run:
    """Validate, quote, freeze and enqueue a new run (``_KeyTaken``: its key was taken
    meanwhile). Reads first (revision, assets, the job's fair round), then every write in one
    go (``queue.submission``: one statement on PostgreSQL), the account row last of all."""
    row, spec = await _resolve(conn, principal, request)
    validated = validate_inputs(spec.inputs, request.inputs)
    priced = _price(spec, request, policy, validated)
    await _check_real_person(conn, principal, spec, request, policy)
    asset_ids = await check_asset_refs(conn, principal, spec.inputs, validated, now)
    caps = spending.run_columns(principal, request.max_cost, policy.credit_limit, now)
    run = replace(_new_run(principal, request, row, priced, now), **caps)
    job = await broker.job_values(
        conn,
        run_id=run.id,
        kind=broker.DISPATCH_RUN,
        max_attempts=policy.max_attempts,
        now=now,
        placement=_placement(principal, spec, policy, now),
    )
    freeze, entry, postings = billing.freeze_rows(
        account_id=principal.account_id, run_id=run.id, amount=priced.total, now=now
    )
    change = change_row(run, previous=None, now=now)
    await spending.reserve(conn, principal, run, priced.total)  # max_cost; key counter first
    new = submission.NewRun(_row(run), freeze, entry, postings, job, change)
    inserted = await submission.insert_submission(conn, new)
    if inserted.run is None:
        raise _KeyTaken  # roll back what ``reserve`` counted; the caller answers the replay
    if not inserted.frozen:
        raise billing.insufficient(priced.total)
    await check_queued_runs(conn, principal.account_id, policy.limits)  # under the account lock
    await assets_db.link_run(conn, run.id, asset_ids)
    if request.callback_url is not None:
        await webhook_endpoints_db.set_callback(conn, run.id, request.callback_url)
    announce_change(conn, inserted.run, previous=None)
    return inserted.run


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


_UNSET: dict[str, Any] = dict.fromkeys(f.name for f in fields(Run))


def _new_run(
    principal: Principal,
    request: RunRequest,
    workflow: WorkflowRevision,
    priced: Quote,
    now: datetime,
) -> Run:
    """The run as it will be stored (every column without a value here is NULL)."""
    values = {
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
    return Run(**(_UNSET | values))


def _row(run: Run) -> dict[str, Any]:
    """The ``runs`` row of a new run (NULL columns left to the database)."""
    return {f: v for f in _UNSET if (v := getattr(run, f)) is not None}


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
