"""Public identifiers in the chenyu formats (see open-api-v2.md §1 "IDs")."""

from __future__ import annotations

import secrets
import time


def _hex(n: int) -> str:
    return secrets.token_hex((n + 1) // 2)[:n]


def new_account_id() -> str:
    return f"user_{_hex(20)}"


def new_api_key_id() -> str:
    return f"key_{_hex(20)}"


def new_workflow_id() -> str:
    return f"wf_{_hex(20)}"


def new_revision_id() -> str:
    return f"wfr_{_hex(20)}"


def new_run_id() -> str:
    return f"wfrun_{_hex(20)}"


def new_freeze_id() -> str:
    return f"frz_{_hex(20)}"


def new_job_id() -> str:
    return f"job_{_hex(20)}"


def new_ledger_id() -> str:
    return f"led_{_hex(20)}"


def new_refund_id() -> str:
    return f"rfd_{_hex(20)}"


def new_worker_id() -> str:
    return f"worker_{_hex(12)}"


def _stamped(prefix: str) -> str:
    return f"{prefix}_{time.time_ns()}_{_hex(16)}"


def new_task_id() -> str:
    return _stamped("task")


def new_prompt_id() -> str:
    """chenyu's wire ``prompt_id`` of a run: an opaque id of ours, not the engine's (that one is
    ``runs.engine_prompt_id``, see ``services.claims.engine_prompt_id``)."""
    return _stamped("prompt")


def new_model_run_id() -> str:
    """``modelrun_<19-digit ns timestamp>_<8 hex>`` (chenyu's format)."""
    return f"modelrun_{time.time_ns()}_{_hex(8)}"


def new_billing_id() -> str:
    return f"wfbill_{time.time_ns()}"


def new_api_key_secret() -> str:
    """A fresh API key: ``wfk_`` + 40 url-safe characters (240 bits)."""
    return f"wfk_{secrets.token_urlsafe(30)}"


def new_webhook_endpoint_id() -> str:
    return f"whep_{_hex(20)}"


def new_webhook_delivery_id() -> str:
    return f"whdl_{_hex(20)}"


def new_webhook_message_id() -> str:
    """A Standard Webhooks ``webhook-id``: one per delivery, kept across retries and resends."""
    return f"msg_{_hex(24)}"
