"""Response models of ``/model-runs/*``, real-person verification and provider callbacks."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from wfrun.api.contract.fields import (
    AT,
    CLOSED,
    MODEL_RUN_ID,
    SIGNED_URL,
    TASK_ID,
    example_of,
    f,
    money,
)
from wfrun.api.contract.runs import ExecutionData, RunError


class ModelRunData(BaseModel):
    """A model run: status, settlement, outputs, usage."""

    model_config = CLOSED
    run_id: str = f("The model run.", MODEL_RUN_ID)
    gateway_task_id: str = f("chenyu gateway task id.", TASK_ID)
    provider_task_id: str | None = f("The provider's task id.", "cgt-20261129081530-abcde")
    request_id: str | None = f("Your request id (defaults to the key).", "req-7f3a")
    model: str | None = f("The model.", "doubao-seedance-1-0-pro-250528")
    provider: str = f("The provider.", "volcengine_ark")
    status: str = f("created, queued, running, succeeded, failed or cancelled.", "running")
    settlement_status: str = f("pending, settled or released.", "pending")
    frozen_amount: str = money("Frozen at submit", "3.00000000")
    released_amount: str | None = money("Returned", None)
    final_amount: str | None = money("Charged", None)
    external_model_cost: str | None = money("Provider cost", None)
    compute_cost: str | None = money("Compute part", None)
    error_code: str | None = f("Lower-case failure code.", None)
    error_message: str | None = f("Failure detail.", None)
    error: RunError | None = f("Why it failed.", None)
    outputs: dict[str, Any] = f("Outputs by key.", {"video": SIGNED_URL})
    usage: dict[str, Any] | None = f("Provider usage.", {"completion_tokens": 108900})
    created_at: str = f("Submit time.", AT)
    terminal_at: str | None = f("End time.", None)


class ModelRunSubmitData(ModelRunData):
    """The accepted model run (or the earlier one, on a replay)."""

    idempotent_replay: bool = f("True when this key was already used.", False)
    execution: ExecutionData | None = f(
        "Only when the request had `Prefer: wait=N`: the task's `run/execution` view when it "
        "ended or the N seconds passed.",
        example_of(ExecutionData),
        default=None,
    )


class ModelRunCancelData(ModelRunData):
    """The model run after the cancel request."""

    cancel_outcome: str = f("cancelled, cancel_requested or already_terminal.", "cancelled")


class VerificationData(BaseModel):
    """A liveness verification of a real person."""

    model_config = CLOSED
    verification_id: str = f("The verification.", "rpv_3c1f0a9b8e7d6c5b4a39")
    status: str = f("pending, verified or failed.", "pending")
    h5_link: str | None = f("Page the person opens (while pending).", "https://h5.example/verify")
    group_id: str | None = f("Material group once verified.", None)
    error: str | None = f("Why it failed.", None)
    created_at: str = f("Start time.", AT)
    completed_at: str | None = f("End time.", None)


class CallbackData(BaseModel):
    """The callback was accepted."""

    model_config = CLOSED
    run_id: str = f("The model run.", MODEL_RUN_ID)
