"""Settings of request rates, run quotas and load shedding (``limits.*``,
``WFRUN_LIMITS__*``). A group of :class:`wfrun.config.Settings`, kept in its own module for
size; import it from ``wfrun.config``. Operators override the first four per account with
``wfrun accounts limits``; the API reads them per request, so changed settings apply at once.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class LimitsSettings(BaseModel):
    """Per-key request rate, per-account run quotas, and how the API sheds a flood."""

    requests_per_second: float | None = Field(
        None,
        ge=0,
        description=(
            "Requests one API key may make per second, over all API processes sharing the "
            "database (429 RATE_LIMITED with Retry-After beyond); unset or 0: no limit."
        ),
    )
    burst: int | None = Field(
        None,
        ge=1,
        description=(
            "Requests a key may make at once after being idle (the token bucket's size); "
            "unset: one second's worth of requests_per_second (at least 1)."
        ),
    )
    max_queued_runs: int | None = Field(
        None,
        ge=0,
        description=(
            "Runs one account may have waiting in the queue; a submit beyond is refused 429 "
            "TOO_MANY_QUEUED_RUNS with Retry-After, nothing frozen. Unset: no cap."
        ),
    )
    max_running_runs: int | None = Field(
        None,
        ge=1,
        description=(
            "Runs of one account running at once; more wait their turn in the queue "
            "(never refused). Unset: no cap."
        ),
    )
    sync_interval_seconds: float = Field(
        0.2,
        gt=0,
        le=5,
        description=(
            "How often each API process exchanges its keys' request counts with the others "
            "through the database (the rate limit's overshoot is at most about "
            "rate x this x API processes)."
        ),
    )
    overrides_refresh_seconds: float = Field(
        2.0, gt=0, description="How often each API process reloads the per-account overrides."
    )
    max_concurrent_requests: int | None = Field(
        64,
        ge=1,
        description=(
            "API requests one process works on at once (event streams and Prefer: wait "
            "excluded); more wait briefly for a turn. Unset: no bound."
        ),
    )
    max_waiting_requests: int = Field(
        64,
        ge=0,
        description=(
            "Requests that may wait for a turn per process; one more is answered 503 "
            "SERVICE_UNAVAILABLE (overloaded) with Retry-After at once."
        ),
    )
    max_wait_seconds: float = Field(
        0.5,
        gt=0,
        le=10,
        description=(
            "How long a request waits for a turn before it is answered 503 "
            "SERVICE_UNAVAILABLE (overloaded) with Retry-After; it changed nothing."
        ),
    )
