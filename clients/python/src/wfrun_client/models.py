"""Typed views of every response's ``data`` (field names are the wire's, open-api-v2.md).

Amounts the wire sends as 8-decimal strings are :class:`~decimal.Decimal` (exact); the
numbers chenyu sends as JSON numbers (``run/execution`` costs, ``balance``) stay floats.
Models allow extra fields, so a newer server's additions survive a round trip, and a field a
chenyu server omits is simply ``None``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

T = TypeVar("T")

Amount = Annotated[
    Decimal, PlainSerializer(lambda d: format(d, "f"), return_type=str, when_used="json")
]
"""An exact amount; JSON keeps the wire's fixed-point spelling (``"0.00000000"``, not ``0E-8``)."""

TERMINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class Page(Model, Generic[T]):
    """One page of a list: ``items`` plus the paging fields."""

    items: list[T]
    total: int
    page: int | None = 1
    """None for a page asked by cursor (``run/list``)."""
    page_size: int = 20
    next_cursor: str | None = None
    """wfrun's ``run/list``: the cursor of the next page, None on the last (and from a server
    without cursors, chenyu's: ``runs.list`` then walks the pages by number)."""


class Owner(Model):
    user_id: str | None = None
    display_name: str | None = None


class WorkflowSummary(Model):
    """An entry of ``/workflow/market/list``."""

    workflow_id: str
    revision_id: str | None = None
    title: str = ""
    description: str | None = None
    cover_url: str | None = None
    tags: list[str] = Field(default_factory=list)
    owner: Owner | None = None
    quote_currency: str = "CNY"
    quote_amount: Amount | None = None
    may_incur_external_model_cost: bool = False
    updated_at: str | None = None


class InputSpec(Model):
    """An ``editable_parameter_manifest`` entry: one key a submit's ``inputs`` may carry."""

    key: str
    type: str = "string"
    display_name: str | None = None
    description: str | None = None
    required: bool = False
    default_value: Any = None
    options: list[Any] | None = None
    multiple: bool = False


class OutputSpec(Model):
    """A ``candidate_output_manifest`` entry: one key of a run's ``outputs``."""

    key: str
    type: str = "file"
    display_name: str | None = None
    multiple: bool = False


class Workflow(WorkflowSummary):
    """``/workflow/market/info``: the published revision, with its manifests."""

    covers: list[str] = Field(default_factory=list)
    external_cost_notice: str | None = None
    editable_parameter_manifest: list[InputSpec] = Field(default_factory=list)
    candidate_output_manifest: list[OutputSpec] = Field(default_factory=list)


class QuoteBreakdown(Model):
    compute: Amount | None = None
    external_model: Amount | None = None
    fixed_fee: Amount | None = None
    price_per_second: Amount | None = None
    estimated_seconds: float | None = None


class Quote(Model):
    """``/workflow/run/quote``: what a submit would freeze, without side effects."""

    workflow_id: str
    revision_id: str | None = None
    quote_currency: str = "CNY"
    quote_amount: Amount
    breakdown: QuoteBreakdown | None = None
    may_incur_external_model_cost: bool = False


class SubmitResult(Model):
    """``/workflow/run/submit``: the run created (or replayed for the same idempotency key)."""

    run_order_id: str
    workflow_id: str
    revision_id: str | None = None
    quote_currency: str = "CNY"
    quote_amount: Amount
    freeze_status: str | None = None
    run_status: str
    task_id: str | None = None
    prompt_id: str | None = None
    billing_run_id: str | None = None
    idempotent_replay: bool = False
    idempotency_key: str | None = None
    """The key the SDK sent (not a wire field): resubmit with it to reach the same run."""


class RunSummary(Model):
    """An entry of ``/workflow/run/list``."""

    run_order_id: str
    workflow_id: str
    revision_id: str | None = None
    title: str | None = None
    run_status: str
    quote_amount: Amount | None = None
    final_amount: Amount | None = None
    created_at: str | None = None


class RunInfo(Model):
    """``/workflow/run/info``: the billing view of one run, with its outputs."""

    run_order_id: str
    workflow_id: str
    revision_id: str | None = None
    quote_amount: Amount | None = None
    quote_currency: str = "CNY"
    freeze_status: str | None = None
    submission_status: str | None = None
    run_status: str
    settlement_status: str | None = None
    task_id: str | None = None
    prompt_id: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    compute_cost: Amount | None = None
    external_model_cost: Amount | None = None
    total_cost: Amount | None = None
    final_amount: Amount | None = None
    released_amount: Amount | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: str | None = None
    updated_at: str | None = None

    @property
    def ended(self) -> bool:
        return self.run_status in TERMINAL_STATUSES


class QueueInfo(Model):
    position: int | None = None
    estimated_wait_sec: float | None = None
    reason: str | None = None


class LogEntry(Model):
    at: str | None = None
    event_type: str | None = None
    level: str | None = None
    message: str | None = None
    node_id: str | None = None
    progress_percent: float | None = None


class RunError(Model):
    reason: str | None = None
    detail: str | None = None
    engine_code: str | None = None
    status_code: int | None = None


class Execution(Model):
    """``/workflow/run/execution``: the live view clients poll."""

    task_id: str | None = None
    workflow_id: str | None = None
    run_order_id: str | None = None
    status: str
    queue_info: QueueInfo | None = None
    progress_percent: float | None = None
    progress_snapshot: Any = None
    logs: list[LogEntry] = Field(default_factory=list)
    actual_execution_duration_sec: float | None = None
    compute_cost: float | None = None
    external_model_cost: float | None = None
    total_cost: float | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: RunError | None = None
    created_at: str | None = None
    started_at: str | None = None
    terminal_at: str | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL_STATUSES


class CancelResult(Model):
    """``/workflow/run/cancel`` (wfrun): ``cancel_outcome`` says what the cancel did."""

    run_order_id: str
    run_status: str
    freeze_status: str | None = None
    cancel_outcome: str
    released_amount: Amount | None = None


class RunEvent(Model):
    """One event of a run as ``runs.wait`` reports it: the event stream's ``status``,
    ``progress``, ``log``, ``output`` and ``done`` (``data`` as sent), plus ``queue``
    (``data`` = ``queue_info``) while the run waits in the queue."""

    event: str
    data: dict[str, Any] = Field(default_factory=dict)
    id: int | None = None


class Asset(Model):
    """``/assets``: an uploaded file; pass ``asset_uri`` as a media input."""

    asset_id: str
    asset_uri: str
    url: str | None = None
    content_url: str | None = None
    signed_url: str | None = None
    media_type: str | None = None
    mime_type: str | None = None
    size_bytes: int | None = None
    purpose: str | None = None
    persistent: bool = False
    expires_at: str | None = None
    status: str | None = None


class Balance(Model):
    """``/balance/info``: chenyu's yuan numbers plus wfrun's exact strings."""

    balance: float
    card_balance: float = 0
    available_amount: Amount | None = None
    frozen_amount: Amount | None = None
    currency: str = "CNY"


class Bill(Model):
    amount: float
    charge_channel: int | None = None
    order_number: str | None = None
    order_time: int | None = None
    settle_start_time: int | None = None
    settle_end_time: int | None = None
    remark: str | None = None


class Recharge(Model):
    order_number: str | None = None
    amount: float
    recharge_time: int | None = None
    channel: str | None = None
    remark: str | None = None


class ModelRun(Model):
    """``/model-runs/*``: an external model (Seedance video) task."""

    run_id: str
    gateway_task_id: str | None = None
    model: str | None = None
    provider: str | None = None
    status: str
    settlement_status: str | None = None
    frozen_amount: Amount | None = None
    released_amount: Amount | None = None
    final_amount: Amount | None = None
    error_code: str | None = None
    error_message: str | None = None
    outputs: dict[str, Any] = Field(default_factory=dict)
    usage: Any = None
    cancel_outcome: str | None = None
    idempotent_replay: bool | None = None
    created_at: str | None = None
    terminal_at: str | None = None
