"""Response models of ``/workflow/run/*`` (open-api-v2.md §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel

from wfrun.api.contract.fields import (
    AT,
    BILLING_ID,
    CLOSED,
    PROMPT_ID,
    REVISION_ID,
    RUN_ID,
    SIGNED_URL,
    TASK_ID,
    WORKFLOW_ID,
    example_of,
    f,
    money,
)
from wfrun.domain import run_cursor
from wfrun.domain.runs import FreezeStatus, RunStatus, SubmissionStatus

Currency = Literal["CNY"]
OUTPUTS_EXAMPLE = {"image": SIGNED_URL}
CURSOR = run_cursor.encode(
    run_cursor.RunPosition(datetime(2026, 11, 25, 10, 0, 0, 123000, tzinfo=UTC), RUN_ID),
    run_cursor.RunFilters(None, None),
)


class Breakdown(BaseModel):
    model_config = CLOSED
    compute: str = money("Estimated compute part")
    external_model: str = money("Estimated external model part", "0.00000000")
    fixed_fee: str = money("Fixed fee per run", "0.20000000")
    price_per_second: str = money("Price per second of execution", "0.01000000")
    estimated_seconds: int = f("Estimated execution seconds.", 100)


class QuoteData(BaseModel):
    """The price a submit would freeze."""

    model_config = CLOSED
    workflow_id: str = f("The workflow.", WORKFLOW_ID)
    revision_id: str = f("The revision that would run.", REVISION_ID)
    quote_currency: Currency = f("Always CNY.", "CNY")
    quote_amount: str = money("The quote, frozen at submit")
    breakdown: Breakdown
    may_incur_external_model_cost: bool = f("Whether external model costs may apply.", False)


class CancelData(BaseModel):
    """The run after the cancel request."""

    model_config = CLOSED
    run_order_id: str = f("The run.", RUN_ID)
    run_status: RunStatus = f("State of the run now.", "cancelled")
    freeze_status: FreezeStatus = f("State of the freeze now.", "released")
    cancel_outcome: str = f(
        "cancelled, cancel_requested (running: stops soon) or already_terminal.", "cancelled"
    )
    released_amount: str | None = money("Amount returned to the balance")


class RunListItem(BaseModel):
    model_config = CLOSED
    run_order_id: str = f("The run.", RUN_ID)
    workflow_id: str = f("The workflow.", WORKFLOW_ID)
    revision_id: str = f("The revision.", REVISION_ID)
    title: str = f("Workflow title at submit.", "Portrait retouch")
    run_status: RunStatus = f("State of the run.", "succeeded")
    quote_amount: str = money("The frozen quote")
    final_amount: str | None = money("Amount charged once settled", "0.84000000")
    created_at: str = f("Submit time (RFC 3339, UTC).", AT)


class RunPage(BaseModel):
    """One page of the caller's runs, newest first."""

    model_config = CLOSED
    items: list[RunListItem] = f("Runs on this page.", [])
    total: int = f(
        "Runs matching, all pages, counted from the newest up to 1,000 (or, for page N, one "
        "past that page).",
        1,
    )
    page: int | None = f("This page, from 1; null when the request sent a cursor.", 1)
    page_size: int = f("Items per page.", 20)
    next_cursor: str | None = f(
        "wfrun: pass as cursor for the next page (same filters, no page); null on the last page.",
        CURSOR,
    )


class RunInfoData(BaseModel):
    """Billing view of one run."""

    model_config = CLOSED
    run_order_id: str = f("The run.", RUN_ID)
    workflow_id: str = f("The workflow.", WORKFLOW_ID)
    revision_id: str = f("The revision.", REVISION_ID)
    quote_amount: str = money("The frozen quote")
    quote_currency: Currency = f("Always CNY.", "CNY")
    freeze_status: FreezeStatus = f("State of the freeze.", "settled")
    submission_status: SubmissionStatus = f("Whether an engine took the run.", "submitted")
    run_status: RunStatus = f("State of the run.", "succeeded")
    settlement_status: str = f("pending, settled or released.", "settled")
    task_id: str = f("chenyu task id.", TASK_ID)
    prompt_id: str = f("chenyu prompt id.", PROMPT_ID)
    inputs: dict[str, Any] = f("The inputs as submitted.", {"prompt": "a cat"})
    outputs: dict[str, Any] = f("Outputs by output key (signed URLs or text).", OUTPUTS_EXAMPLE)
    compute_cost: str | None = money("Compute charged", "0.84000000")
    external_model_cost: str | None = money("External model cost charged", "0.00000000")
    total_cost: str | None = money("compute_cost + external_model_cost", "0.84000000")
    final_amount: str | None = money("Amount charged", "0.84000000")
    released_amount: str | None = money("Amount returned", "0.36000000")
    error_code: str | None = f("Failure code of a failed run.", None)
    error_message: str | None = f("Failure detail of a failed run.", None)
    outputs_expire_at: str | None = f("When output files are deleted.", AT)
    created_at: str = f("Submit time.", AT)
    updated_at: str = f("Last change.", AT)


class QueueInfo(BaseModel):
    model_config = CLOSED
    position: int = f("Runs ahead of this one.", 2)
    estimated_wait_sec: float | None = f("Estimated wait in seconds.", 30)
    reason: str | None = f("Why the run waits, in words.", "2 runs ahead in lane comfyui")


class RunError(BaseModel):
    """Why a run failed, in the error envelope's terms."""

    model_config = CLOSED
    reason: str | None = f("Short reason.", "执行失败")
    detail: str | None = f("Detail.", "node 7 (KSampler): out of memory")
    engine_code: str = f("Failure code (docs/errors.md).", "ENGINE_EXECUTION_FAILED")
    status_code: int | None = f("HTTP status of the category.", 500)


class LogEntry(BaseModel):
    model_config = CLOSED
    at: str = f("Time of the line.", AT)
    event_type: str = f("Kind of log event.", "progress")
    level: str = f("info, warning or error.", "info")
    message: str = f("The line.", "KSampler 40%")
    node_id: str | None = f("Graph node, when any.", "3")
    progress_percent: float | None = f("Run progress at that time.", 40.0)


class ExecutionData(BaseModel):
    """Live view of a run: the endpoint clients poll."""

    model_config = CLOSED
    run_order_id: str = f("The run.", RUN_ID)
    task_id: str = f("chenyu task id.", TASK_ID)
    workflow_id: str = f("The workflow.", WORKFLOW_ID)
    status: RunStatus = f("State of the run.", "running")
    queue_info: QueueInfo | None = f("While queued.", None)
    progress_percent: float | None = f("0-100.", 40.0)
    progress_snapshot: dict[str, Any] | None = f("Engine progress detail.", {"node": "3"})
    logs: list[LogEntry] = f("Log lines so far, oldest first.", [])
    actual_execution_duration_sec: float | None = f("Execution time so far.", 12.5)
    compute_cost: float | None = f("Compute charged, in yuan (number).", 0.84)
    external_model_cost: float | None = f("External cost, in yuan (number).", 0)
    total_cost: float | None = f("Total, in yuan (number).", 0.84)
    outputs: dict[str, Any] = f("Outputs by output key.", OUTPUTS_EXAMPLE)
    error: RunError | None = f("Why the run failed.", None)
    cancel_requested: bool = f("A cancel was asked.", False)
    created_at: str = f("Submit time.", AT)
    started_at: str | None = f("Start time.", AT)
    terminal_at: str | None = f("End time.", None)


class SubmitData(BaseModel):
    """The accepted run (or the earlier one, on an idempotent replay)."""

    model_config = CLOSED
    run_order_id: str = f("The run's id.", RUN_ID)
    workflow_id: str = f("The workflow.", WORKFLOW_ID)
    revision_id: str = f("The revision that runs.", REVISION_ID)
    quote_currency: Currency = f("Always CNY.", "CNY")
    quote_amount: str = money("The frozen quote")
    freeze_status: FreezeStatus = f("State of the freeze.", "frozen")
    run_status: RunStatus = f("State of the run.", "queued")
    task_id: str = f("chenyu task id.", TASK_ID)
    prompt_id: str = f("chenyu prompt id (opaque).", PROMPT_ID)
    billing_run_id: str = f("Order number of the bill.", BILLING_ID)
    idempotent_replay: bool = f("True when this key was already used: the earlier run.", False)
    execution: ExecutionData | None = f(
        "Only when the request had `Prefer: wait=N`: the run's `run/execution` view when "
        "it ended or the N seconds passed.",
        example_of(ExecutionData),
        default=None,
    )
