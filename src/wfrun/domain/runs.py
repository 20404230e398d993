"""The run state machine. Every status change goes through :func:`transition`.

    queued ──▶ running ──▶ succeeded | failed | cancelled
       └──────────────────▶ failed | cancelled

Terminal states are absorbing. The companion vocabularies (freeze, submission, settlement)
follow from how a run ended and are derived here, not stored independently by callers.
"""

from __future__ import annotations

from enum import StrEnum

from wfrun.errors import InvalidTransition


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FreezeStatus(StrEnum):
    FROZEN = "frozen"
    SETTLED = "settled"
    RELEASED = "released"


class SubmissionStatus(StrEnum):
    PENDING = "pending"
    SUBMITTED = "submitted"
    REJECTED = "rejected"


TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})

TRANSITIONS: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def is_terminal(status: RunStatus) -> bool:
    return status in TERMINAL


def transition(current: RunStatus, target: RunStatus) -> RunStatus:
    """Validate ``current → target`` and return ``target``.

    Raises:
        InvalidTransition: the move is not in :data:`TRANSITIONS`.
    """
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"run cannot move from {current} to {target}")
    return target


def submission_status(status: RunStatus, started: bool) -> SubmissionStatus:
    """``submitted`` once an engine accepted the run; ``rejected`` if it failed before that."""
    if started:
        return SubmissionStatus.SUBMITTED
    if status is RunStatus.FAILED:
        return SubmissionStatus.REJECTED
    return SubmissionStatus.PENDING


RUN_FAMILIES = ("workflow", "model")
"""A run's ``family``: a paid workflow run, or a model run."""


def change_events(status: RunStatus) -> dict[str, str]:
    """:func:`change_event_type` of ``status`` for every family, the workflow run's first."""
    return {family: change_event_type(family, status) for family in RUN_FAMILIES}


def change_event_type(family: str, status: RunStatus) -> str:
    """The outbox (and webhook) name of a run reaching ``status``: ``run.queued``,
    ``run.started``, ``run.succeeded`` …; ``model_run.*`` for model runs."""
    prefix = "model_run" if family == "model" else "run"
    name = {RunStatus.QUEUED: "queued", RunStatus.RUNNING: "started"}.get(status, status.value)
    return f"{prefix}.{name}"
