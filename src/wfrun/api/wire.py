"""Mapping rows to chenyu's wire shapes (open-api-v2.md). Money becomes 8-decimal strings
here (numbers where chenyu uses numbers); times become RFC 3339 UTC strings."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from wfrun.api.errors import STATUS_BY_CATEGORY
from wfrun.clock import to_rfc3339
from wfrun.domain import manifest as m
from wfrun.domain.money import CURRENCY, format_amount, to_yuan_number
from wfrun.errors import Category

__all__ = ["Links", "format_amount"]
from wfrun.db.accounts import Account, Bill, Recharge
from wfrun.db.assets import Asset
from wfrun.db.runs import Run, RunEvent
from wfrun.db.workflows import MarketItem, WorkflowRevision
from wfrun.domain.pricing import PriceTable, Quote, quote
from wfrun.domain.runs import RunStatus, submission_status
from wfrun.services.run_views import ExecutionView, RunList
from wfrun.storage.links import Links

T = TypeVar("T")


def ok(data: Any, msg: str = "查询成功") -> dict[str, Any]:
    return {"code": 0, "msg": msg, "data": data}


def page(items: list[Any], total: int, page_no: int, size: int) -> dict[str, Any]:
    return {"items": items, "total": total, "page": page_no, "page_size": size}


def run_page(found: RunList, page_no: int | None, size: int) -> dict[str, Any]:
    """``run/list``'s data: chenyu's page fields and wfrun's ``next_cursor`` (``page`` is None
    for a request that sent a cursor)."""
    return {
        "items": items(found.runs, run_list_item),
        "total": found.total,
        "page": page_no,
        "page_size": size,
        "next_cursor": found.next_cursor,
    }


def _money(value: int | None) -> str | None:
    return None if value is None else format_amount(value)


def _number(value: int | None) -> float | None:
    return None if value is None else to_yuan_number(value)


def _owner(item: MarketItem) -> dict[str, Any]:
    return {"user_id": item.owner_id, "display_name": item.owner_name}


def _prices(item: MarketItem) -> PriceTable:
    return PriceTable(**item.prices)


def market_item(item: MarketItem) -> dict[str, Any]:
    prices = _prices(item)
    return {
        "workflow_id": item.id,
        "revision_id": item.revision_id,
        "title": item.title,
        "description": item.description,
        "cover_url": item.cover_url,
        "tags": item.tags,
        "owner": _owner(item),
        "quote_currency": CURRENCY,
        "quote_amount": format_amount(quote(prices).total),
        "may_incur_external_model_cost": prices.may_incur_external_model_cost,
        "updated_at": to_rfc3339(item.updated_at),
    }


def market_info(published: WorkflowRevision) -> dict[str, Any]:
    prices = _prices(published)
    return {
        **market_item(published),
        "covers": [published.cover_url] if published.cover_url else [],
        "external_cost_notice": prices.external_cost_notice,
        "editable_parameter_manifest": [
            m.input_to_wire(m.input_from_json(d)) for d in published.input_manifest
        ],
        "candidate_output_manifest": [
            m.output_to_wire(m.output_from_json(d)) for d in published.output_manifest
        ],
        "price_table": {
            "fixed_fee": format_amount(prices.fixed_fee),
            "price_per_second": format_amount(prices.price_per_second),
            "estimated_seconds": prices.estimated_seconds,
        },
    }


def submit_data(run: Run, replay: bool) -> dict[str, Any]:
    return {
        "run_order_id": run.id,
        "workflow_id": run.workflow_id,
        "revision_id": run.revision_id,
        "quote_currency": CURRENCY,
        "quote_amount": format_amount(run.quote_amount),
        "freeze_status": run.freeze_status,
        "run_status": run.status,
        "task_id": run.task_id,
        "prompt_id": run.prompt_id,
        "billing_run_id": run.billing_run_id,
        "idempotent_replay": replay,
    }


def run_list_item(run: Run) -> dict[str, Any]:
    return {
        "run_order_id": run.id,
        "workflow_id": run.workflow_id,
        "revision_id": run.revision_id,
        "title": run.title,
        "run_status": run.status,
        "quote_amount": format_amount(run.quote_amount),
        "final_amount": _money(run.final_amount),
        "created_at": to_rfc3339(run.created_at),
    }


def _settlement_status(run: Run) -> str:
    return "pending" if run.freeze_status == "frozen" else str(run.freeze_status)


def run_info(run: Run, links: Links) -> dict[str, Any]:
    total = _sum(run.compute_cost, run.external_model_cost)
    return {
        "run_order_id": run.id,
        "workflow_id": run.workflow_id,
        "revision_id": run.revision_id,
        "quote_amount": format_amount(run.quote_amount),
        "quote_currency": CURRENCY,
        "freeze_status": run.freeze_status,
        "submission_status": submission_status(run.status, run.started_at is not None).value,
        "run_status": run.status,
        "settlement_status": _settlement_status(run),
        "task_id": run.task_id,
        "prompt_id": run.prompt_id,
        "inputs": run.inputs,
        "outputs": outputs(run, links),
        "compute_cost": _money(run.compute_cost),
        "external_model_cost": _money(run.external_model_cost),
        "total_cost": _money(total),
        "final_amount": _money(run.final_amount),
        "released_amount": _money(run.released_amount),
        "error_code": run.error_code,
        "error_message": run.error_detail,
        "outputs_expire_at": to_rfc3339(run.outputs_expire_at),
        "created_at": to_rfc3339(run.created_at),
        "updated_at": to_rfc3339(run.updated_at),
    }


def _sum(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def outputs(run: Run, links: Links) -> dict[str, Any]:
    """Outputs keyed by ``candidate_output_manifest`` keys: text, or media URLs (None once
    retention has deleted the files)."""
    result: dict[str, Any] = {}
    deleted = run.outputs_deleted_at is not None
    for key, entry in (run.outputs or {}).items():
        if deleted and entry["type"] != "text":
            values: list[Any] = [None for _ in entry["files"]]
        elif entry["type"] == "text":
            values = entry["text"]
        else:
            values = [links.url(f["storage_key"]) for f in entry["files"]]
        result[key] = values if entry["multiple"] else (values[0] if values else None)
    return result


def _error(run: Run) -> dict[str, Any] | None:
    if run.error_code is None or run.error_code == "USER_CANCELLED":  # a cancel is no error
        return None
    return {
        "reason": run.error_reason,
        "detail": run.error_detail,
        "engine_code": run.error_code,
        "status_code": None
        if run.error_category is None
        else STATUS_BY_CATEGORY[Category(run.error_category)],
    }


def execution(view: ExecutionView, links: Links) -> dict[str, Any]:
    run = view.run
    total = _sum(run.compute_cost, run.external_model_cost)
    queue_info = None
    if view.queue_position is not None:
        queue_info = {
            "position": view.queue_position,
            "estimated_wait_sec": view.estimated_wait_sec,
            "reason": view.wait_reason,
        }
    return {
        "run_order_id": run.id,
        "task_id": run.task_id,
        "workflow_id": run.workflow_id,
        "status": run.status,
        "queue_info": queue_info,
        "progress_percent": run.progress_percent,
        "progress_snapshot": run.progress_snapshot,
        "logs": [log_entry(event) for event in view.events],
        "actual_execution_duration_sec": (
            None if run.execution_ms is None else run.execution_ms / 1000
        ),
        "compute_cost": _number(run.compute_cost),
        "external_model_cost": _number(run.external_model_cost),
        "total_cost": _number(total),
        "outputs": outputs(run, links),
        "error": _error(run),
        "cancel_requested": run.cancel_requested_at is not None,
        "created_at": to_rfc3339(run.created_at),
        "started_at": to_rfc3339(run.started_at),
        "terminal_at": to_rfc3339(run.terminal_at),
    }


def log_entry(event: RunEvent) -> dict[str, Any]:
    return {
        "at": to_rfc3339(event.at),
        "event_type": event.event_type,
        "level": event.level,
        "message": event.message,
        "node_id": event.node_id,
        "progress_percent": event.progress_percent,
    }


def balance(account: Account) -> dict[str, Any]:
    available, frozen = account.available, account.frozen
    return {
        "balance": to_yuan_number(available),
        "card_balance": 0,
        "available_amount": format_amount(available),
        "frozen_amount": format_amount(frozen),
        "currency": CURRENCY,
    }


def quote_data(
    workflow_id: str, revision_id: str, prices: PriceTable, q: Quote | None = None
) -> dict[str, Any]:
    q = q or quote(prices)
    return {
        "workflow_id": workflow_id,
        "revision_id": revision_id,
        "quote_currency": CURRENCY,
        "quote_amount": format_amount(q.total),
        "breakdown": {
            "compute": format_amount(q.compute),
            "external_model": format_amount(q.external),
            "fixed_fee": format_amount(prices.fixed_fee),
            "price_per_second": format_amount(prices.price_per_second),
            "estimated_seconds": prices.estimated_seconds,
        },
        "may_incur_external_model_cost": prices.may_incur_external_model_cost,
    }


def items(rows: Iterable[T], fn: Callable[[T], dict[str, Any]]) -> list[dict[str, Any]]:
    return [fn(row) for row in rows]


def asset(item: Asset, links: Links, api_base: str) -> dict[str, Any]:
    """chenyu's asset payload; ``url``/``signed_url`` are signed, expiring download links."""
    signed = links.url(item.storage_key)
    return {
        "asset_id": item.id,
        "asset_uri": f"asset://{item.id}",
        "url": signed,
        "content_url": f"{api_base}/assets/{item.id}/content",
        "signed_url": signed,
        "signed_url_expires_at": links.expires_at(),
        "media_type": item.media_type,
        "mime_type": item.mime_type,
        "size_bytes": item.size_bytes,
        "sha256": item.sha256,
        "filename": item.filename,
        "purpose": item.purpose,
        "persistent": False,
        "created_at": to_rfc3339(item.created_at),
        "expires_at": to_rfc3339(item.expires_at),
        "status": "ready",
    }


def _unix(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp())


def bill(item: Bill) -> dict[str, Any]:
    """chenyu's bill record (``amount`` in yuan, times in Unix seconds) plus the exact string."""
    return {
        "amount": to_yuan_number(item.final_amount),
        "amount_exact": format_amount(item.final_amount),
        "charge_channel": 1,
        "order_number": item.billing_run_id,
        "order_time": _unix(item.created_at),
        "settle_start_time": _unix(item.started_at),
        "settle_end_time": _unix(item.terminal_at),
        "remark": f"{item.title} ({item.run_id})",
        "run_order_id": item.run_id,
    }


def recharge(item: Recharge) -> dict[str, Any]:
    return {
        "order_number": item.id,
        "amount": to_yuan_number(item.amount),
        "amount_exact": format_amount(item.amount),
        "recharge_time": _unix(item.created_at),
        "channel": "operator",
        "remark": item.memo,
    }


# ---- model runs (open-api-v2.md §5) --------------------------------------------------------


def model_run_status(run: Run) -> str:
    """``created`` until Ark accepted the task, then Ark's ``queued``/``running``; terminal
    states are the run's."""
    status = run.status
    if status is not RunStatus.QUEUED and status is not RunStatus.RUNNING:
        return status.value
    if status is RunStatus.RUNNING and run.provider_status == "queued":
        return "queued"
    if status is RunStatus.RUNNING and run.provider_task_id is not None:
        return "running"  # rendering, or its result is being copied in
    return "created"


def _model_error(run: Run) -> tuple[str | None, str | None]:
    if run.error_code is None:
        return None, None
    if run.error_code == "USER_CANCELLED":
        return "user_cancelled", "用户取消任务"
    return str(run.error_code).lower(), run.error_detail


def model_run(run: Run, links: Links, *, replay: bool | None = None) -> dict[str, Any]:
    """A model run: chenyu's submit/cancel fields plus wfrun's detail fields."""
    error_code, error_message = _model_error(run)
    state = run.provider_state or {}
    data: dict[str, Any] = {
        "run_id": run.id,
        "gateway_task_id": run.task_id,
        "provider_task_id": run.provider_task_id,
        "request_id": state.get("request_id"),
        "model": (run.inputs or {}).get("model"),
        "provider": "volcengine_ark",
        "status": model_run_status(run),
        "settlement_status": _settlement_status(run),
        "frozen_amount": format_amount(run.quote_amount),
        "released_amount": _money(run.released_amount),
        "final_amount": _money(run.final_amount),
        "external_model_cost": _money(run.external_model_cost),
        "compute_cost": _money(run.compute_cost),
        "error_code": error_code,
        "error_message": error_message,
        "error": _error(run),
        "outputs": outputs(run, links),
        "usage": run.usage,
        "created_at": to_rfc3339(run.created_at),
        "terminal_at": to_rfc3339(run.terminal_at),
    }
    if replay is not None:
        data["idempotent_replay"] = replay
    return data
