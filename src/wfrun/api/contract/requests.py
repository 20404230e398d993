"""Descriptions and examples of request fields and query parameters, applied to the document.

The request models live in ``api/schemas.py`` and the parameters in the routes; their words live
here so the contract is in one place. A field or parameter without a description fails
``tests/api/test_contract.py``: add it below.
"""

from __future__ import annotations

from typing import Any

from wfrun.api.contract.fields import MODEL_RUN_ID, REVISION_ID, RUN_ID, WORKFLOW_ID
from wfrun.api.contract.runs import CURSOR
from wfrun.api.contract.webhooks import DELIVERY_ID, ENDPOINT_ID, RECEIVER

IDEMPOTENCY_KEY: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": 255,
    "description": "Required. 1-255 printable characters, unique per API key: a retry with "
    "the same key and body returns the first run (idempotent_replay), never a second one.",
    "examples": ["order-2026-11-29-0001"],
}
_INPUTS = {
    "description": "Input values keyed by editable_parameter_manifest keys; media as "
    "asset:// URIs (POST /assets) or https URLs.",
    "examples": [{"prompt": "a red fox in snow", "image": "asset://asset_5f0c2b9d1e7a4c3b"}],
}
MAX_COST: dict[str, Any] = {
    "description": "Optional cap on what the run may be charged (CNY, an amount string): a "
    "quote above it is refused (400 MAX_COST_EXCEEDED, nothing frozen); a run reaching it "
    "is stopped and charged exactly max_cost (error.engine_code COST_LIMIT_REACHED).",
    "examples": ["0.50"],
}
_QUOTE_FIELDS: dict[str, dict[str, Any]] = {
    "workflow_id": {"description": "The workflow to run.", "examples": [WORKFLOW_ID]},
    "revision_id": {
        "description": "A published revision; the current one when omitted.",
        "examples": [REVISION_ID],
    },
    "inputs": _INPUTS,
    "accept_external_cost_risk": {
        "description": "Must be true for workflows that may incur external model costs.",
        "examples": [False],
    },
    "max_cost": MAX_COST,
}
CALLBACK_URL: dict[str, Any] = {
    "description": "Optional https URL that receives this run's events (run.queued … "
    "run.succeeded/failed/cancelled), signed with the account's default secret "
    "(GET /webhooks/secret, Standard Webhooks). It must pass the address policy (400 "
    "otherwise, before anything is frozen).",
    "examples": ["https://hooks.example.com/wfrun/orders/0001"],
}
_ENDPOINT_ID = {"description": "The endpoint.", "examples": [ENDPOINT_ID]}
_EVENTS = {
    "description": "Event types to send (run.queued, run.started, run.progress, "
    "run.succeeded, run.failed, run.cancelled, model_run.*); all but run.progress when omitted.",
    "examples": [["run.succeeded", "run.failed"]],
}
_WEBHOOK_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "EndpointBody": {
        "url": {
            "description": "https URL receiving the deliveries (address policy applies).",
            "examples": [RECEIVER],
        },
        "events": _EVENTS,
        "description": {"description": "Your note.", "examples": ["production orders"]},
    },
    "UpdateBody": {
        "endpoint_id": _ENDPOINT_ID,
        "url": {"description": "New receiver URL.", "examples": [RECEIVER]},
        "events": _EVENTS,
        "description": {"description": "New note.", "examples": ["production orders"]},
        "enabled": {"description": "true re-enables a disabled endpoint.", "examples": [True]},
    },
    "EndpointIdBody": {"endpoint_id": _ENDPOINT_ID},
    "DeliveryIdBody": {
        "delivery_id": {"description": "The delivery to send again.", "examples": [DELIVERY_ID]}
    },
}
BODY_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "QuoteBody": _QUOTE_FIELDS,
    "SubmitBody": {
        **_QUOTE_FIELDS,
        "idempotency_key": IDEMPOTENCY_KEY,
        "callback_url": CALLBACK_URL,
    },
    "CancelBody": {"run_order_id": {"description": "The run to cancel.", "examples": [RUN_ID]}},
    "VideoBody": {
        "idempotency_key": IDEMPOTENCY_KEY,
        "max_cost": MAX_COST,
        "callback_url": CALLBACK_URL,
        "request_id": {
            "description": "Your own id for the task (defaults to the idempotency key).",
            "examples": ["req-7f3a"],
        },
        "inputs": {
            "description": "Seedance inputs: model, content (text and image_url items), "
            "resolution, ratio, duration, …",
            "examples": [
                {
                    "model": "doubao-seedance-1-0-pro-250528",
                    "content": [{"type": "text", "text": "a red fox running in snow"}],
                    "duration": 5,
                }
            ],
        },
    },
    "ModelRunCancelBody": {"run_id": {"description": "The model run.", "examples": [MODEL_RUN_ID]}},
    **_WEBHOOK_FIELDS,
}
"""Per request model: per field, keys merged into (or, with ``type``, replacing) its schema."""

REQUIRED: dict[str, list[str]] = {
    "SubmitBody": ["idempotency_key"],
    "VideoBody": ["idempotency_key"],
}
"""Fields the app requires itself (answering 400 ``IDEMPOTENCY_KEY_REQUIRED``)."""

PARAMETERS: dict[str, dict[str, Any]] = {
    "run_order_id": {"description": "The run.", "example": RUN_ID},
    "run_id": {"description": "The model run.", "example": MODEL_RUN_ID},
    "workflow_id": {"description": "The workflow.", "example": WORKFLOW_ID},
    "run_status": {"description": "Only runs in this state."},
    "status": {"description": "Alias of run_status."},
    "keyword": {"description": "Words in the title or description.", "example": "portrait"},
    "tag": {"description": "Only workflows with this tag.", "example": "image"},
    "sort": {"description": "latest or popular."},
    "charge_channel": {"description": "1 balance, 2 compute card (always empty)."},
    "order_number": {"description": "One bill by its number."},
    "asset_id": {"description": "The asset.", "example": "asset_5f0c2b9d1e7a4c3b8a6d9e0f1a2b3c4d"},
    "verification_id": {"description": "The verification.", "example": "rpv_3c1f0a9b8e7d6c5b4a39"},
    "key": {"description": "Storage key of the file (from a signed link)."},
    "expires": {"description": "Link expiry (Unix seconds), part of the signed link."},
    "signature": {"description": "HMAC-SHA256 of the link (hex), part of the signed link."},
    "bytedToken": {"description": "Ark's token for the finished check."},
    "resultCode": {"description": "Ark's result code of the check."},
    "endpoint_id": {"description": "Only deliveries to this endpoint.", "example": ENDPOINT_ID},
    "cursor": {
        "description": "wfrun: continue a list after the page that returned this "
        "data.next_cursor (opaque; newest first, no run twice or skipped however many are "
        "submitted meanwhile). Send the same filters as that request and no page; 400 "
        "INVALID_PARAMETER otherwise or for a garbled cursor.",
        "example": CURSOR,
    },
    "last_event_id": {
        "description": "Resume after this event id (as the Last-Event-ID header).",
        "example": "42",
    },
}
"""Query/path parameters by name: the description (and example) where the route gave none."""

PAGE_OR_CURSOR = "Page number, from 1 (1 when neither page nor cursor is given); not with cursor."
"""``run/list``'s ``page``: the other lists use ``api.deps.Page``."""

PREFER_WAIT: dict[str, Any] = {
    "name": "Prefer",
    "in": "header",
    "required": False,
    "description": "`wait=N` (N from 0 to 60): answer when the run ends or after N seconds, "
    "with `data.execution`; other preferences are ignored. 400 `INVALID_PARAMETER` for a "
    "bad N.",
    "schema": {"type": "string"},
    "example": "wait=30",
}
"""The request header of the waiting submits (open-api-v2.md §7 "Live runs")."""

PREFERENCE_APPLIED: dict[str, Any] = {
    "Preference-Applied": {
        "description": "`wait=N` when the request asked `Prefer: wait=N`.",
        "schema": {"type": "string", "examples": ["wait=30"]},
    }
}
"""The response header acknowledging ``Prefer: wait=N``."""

LAST_EVENT_ID: dict[str, Any] = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "Resume after this event id (browsers send it on reconnect); wins over "
    "`last_event_id`.",
    "schema": {"type": "string"},
    "example": "42",
}
"""The SSE resume header of ``/workflow/run/events``."""
