"""Response models of ``/webhooks/*`` (open-api-v2.md §7 "Live runs"): endpoints, the default
secret, the delivery log."""

from __future__ import annotations

from pydantic import BaseModel

from wfrun.api.contract.fields import AT, CLOSED, RUN_ID, f

ENDPOINT_ID = "whep_4b1d7c0e9a2f6e3d8c5b"
DELIVERY_ID = "whdl_0c9e2a7f5b3d1e8a6c4f"
SECRET = "whsec_P5oMfl0huExqHp89C3xS6KTW8QOeeyxajQ9uSxyTonU="
RECEIVER = "https://hooks.example.com/wfrun"


class EndpointData(BaseModel):
    """A webhook endpoint; ``secret`` only in the answer that made it (create, rotate)."""

    model_config = CLOSED
    endpoint_id: str = f("The endpoint.", ENDPOINT_ID)
    url: str = f("Where deliveries are POSTed.", RECEIVER)
    events: list[str] = f(
        "Event types sent here (run.queued, run.started, run.progress, run.succeeded, "
        "run.failed, run.cancelled, model_run.*).",
        ["run.succeeded", "run.failed"],
    )
    description: str = f("Your note.", "production orders")
    enabled: bool = f("False once disabled (failing too long, or by you).", True)
    disabled_reason: str | None = f("Why it was disabled.", None)
    failing_since: str | None = f("First failed delivery of the current failing streak.", None)
    previous_secret_expires_at: str | None = f(
        "After a rotation: until when the old secret also signs.", None
    )
    created_at: str = f("Creation time (RFC 3339, UTC).", AT)
    updated_at: str = f("Last change.", AT)
    deleted_at: str | None = f("Deletion time (only in the delete answer).", AT, default=None)
    secret: str | None = f(
        "The signing secret, shown once (Standard Webhooks).", SECRET, default=None
    )


class EndpointList(BaseModel):
    """The caller's endpoints (secrets are never shown again)."""

    model_config = CLOSED
    items: list[EndpointData] = f("The endpoints.", [])
    total: int = f("How many.", 1)


class SecretData(BaseModel):
    """The account's default secret: it signs per-run ``callback_url`` deliveries."""

    model_config = CLOSED
    secret: str = f("Standard Webhooks secret (whsec_ + base64).", SECRET)


class AttemptData(BaseModel):
    model_config = CLOSED
    attempt: int = f("Attempt number, from 1.", 1)
    started_at: str | None = f("When it was sent.", AT)
    http_status: int | None = f("The receiver's HTTP status (none when unreachable).", 200)
    latency_ms: int = f("Time to the receiver's answer.", 84)
    response_excerpt: str | None = f("Start of the receiver's answer body.", "ok")
    error: str | None = f("Why the attempt failed.", None)


class DeliveryData(BaseModel):
    """One delivery (one event to one receiver) with its attempt log; the ``http_status``,
    ``latency_ms``, ``response_excerpt`` and ``error`` fields repeat the latest attempt."""

    model_config = CLOSED
    delivery_id: str = f("The delivery.", DELIVERY_ID)
    webhook_id: str = f(
        "The webhook-id header: the same on every attempt and resend.",
        "msg_5e8a1c3f9b7d2e4a6c0f1b3d",
    )
    endpoint_id: str | None = f("The endpoint (none for a callback_url delivery).", ENDPOINT_ID)
    target: str = f("endpoint or callback (the run's callback_url).", "endpoint")
    run_order_id: str = f("The run the event is about.", RUN_ID)
    event_type: str = f("The event type.", "run.succeeded")
    status: str = f("pending, sending, succeeded or failed.", "succeeded")
    attempt_count: int = f("Attempts so far.", 1)
    http_status: int | None = f("Latest attempt: receiver's status.", 200)
    latency_ms: int | None = f("Latest attempt: latency.", 84)
    response_excerpt: str | None = f("Latest attempt: start of the answer.", "ok")
    error: str | None = f("Latest attempt: why it failed.", None)
    next_retry_at: str | None = f("When a pending delivery is tried again.", None)
    delivered_at: str | None = f("When the receiver accepted it (2xx).", AT)
    created_at: str = f("When the event was queued.", AT)
    attempts: list[AttemptData] = f("Every attempt, oldest first.", [])


class DeliveryPage(BaseModel):
    """One page of the delivery log, newest first."""

    model_config = CLOSED
    items: list[DeliveryData] = f("Deliveries on this page.", [])
    total: int = f("Deliveries matching, all pages.", 1)
    page: int = f("This page, from 1.", 1)
    page_size: int = f("Items per page.", 20)
