"""Every endpoint the SDK calls, as a :class:`~wfrun_client._core.Call` (open-api-v2.md).

Both clients' resources are thin wrappers over these functions, so a request is spelled once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from wfrun_client import _core
from wfrun_client import models as m
from wfrun_client._core import Call, Upload

M = TypeVar("M", bound=BaseModel)


def _model(cls: type[M]) -> Callable[[Any], M]:
    return cls.model_validate


def _page(cls: type[M]) -> Callable[[Any], m.Page[M]]:
    return m.Page[cls].model_validate  # type: ignore[valid-type]


def new_idempotency_key() -> str:
    """A fresh key; the SDK makes one per submit and resends it on every retry."""
    return f"wfrun-client-{uuid.uuid4().hex}"


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def run_body(
    workflow_id: str,
    inputs: Mapping[str, Any] | None,
    revision_id: str | None,
    accept_external_cost_risk: bool | None,
    extra: Mapping[str, Any],
    max_cost: str | None = None,
) -> dict[str, Any]:
    """The quote/submit body; ``extra`` carries newer fields (``callback_url``, …) as they
    are."""
    body = {"workflow_id": workflow_id, "inputs": dict(inputs or {})}
    body |= _compact(
        {
            "revision_id": revision_id,
            "accept_external_cost_risk": accept_external_cost_risk,
            "max_cost": max_cost,
        }
    )
    return body | dict(extra)


def submit(body: dict[str, Any], key: str) -> Call[m.SubmitResult]:
    def parse(data: Any) -> m.SubmitResult:
        return m.SubmitResult.model_validate({**data, "idempotency_key": key})

    return Call("POST", "/workflow/run/submit", parse, body=body | {"idempotency_key": key})


def quote(body: dict[str, Any]) -> Call[m.Quote]:
    return Call("POST", "/workflow/run/quote", _model(m.Quote), body=body)


def run_info(run_id: str) -> Call[m.RunInfo]:
    return Call("GET", "/workflow/run/info", _model(m.RunInfo), params={"run_order_id": run_id})


def execution(run_id: str) -> Call[m.Execution]:
    params = {"run_order_id": run_id}
    return Call("GET", "/workflow/run/execution", _model(m.Execution), params=params)


def cancel(run_id: str) -> Call[m.CancelResult]:
    body = {"run_order_id": run_id}
    return Call("POST", "/workflow/run/cancel", _model(m.CancelResult), body=body)


def run_page(
    page: int | None,
    page_size: int,
    workflow_id: str | None,
    status: str | None,
    cursor: str | None = None,
) -> Call[m.Page[m.RunSummary]]:
    """One page of ``run/list``: by number, or after ``cursor`` (then no page is sent)."""
    place = {"cursor": cursor} if cursor is not None else {"page": page}
    params = _compact(
        {**place, "page_size": page_size, "workflow_id": workflow_id, "run_status": status}
    )
    return Call("GET", "/workflow/run/list", _page(m.RunSummary), params=params)


RunPlace = tuple[int | None, str | None]
"""Which ``run/list`` page to fetch: (page number, None) or (None, cursor)."""


def next_run_place(got: m.Page[Any], place: RunPlace, page_size: int) -> RunPlace | None:
    """Where ``runs.list`` goes after ``got`` (fetched at ``place``): after wfrun's
    ``next_cursor`` (None there: the end), or to the next page number from a server that
    sends no cursor (chenyu); None when the list is exhausted."""
    if "next_cursor" in got.model_fields_set:
        return None if got.next_cursor is None else (None, got.next_cursor)
    number = _core.next_page(place[0] or 1, page_size, got.total, len(got.items))
    return None if number is None else (number, None)


def workflow_page(
    page: int, page_size: int, keyword: str | None, tag: str | None
) -> Call[m.Page[m.WorkflowSummary]]:
    params = _compact({"page": page, "page_size": page_size, "keyword": keyword, "tag": tag})
    return Call("GET", "/workflow/market/list", _page(m.WorkflowSummary), params=params)


def workflow(workflow_id: str) -> Call[m.Workflow]:
    params = {"workflow_id": workflow_id}
    return Call("GET", "/workflow/market/info", _model(m.Workflow), params=params)


def upload(path: str | Path, media_type: str | None, ttl_hours: int | None) -> Call[m.Asset]:
    fields = _compact({"media_type": media_type, "ttl_hours": ttl_hours})
    form = Upload(Path(path), {k: str(v) for k, v in fields.items()})
    return Call("POST", "/assets", _model(m.Asset), upload=form, retry="unsent")


def asset(asset_id: str) -> Call[m.Asset]:
    return Call("GET", f"/assets/{asset_id}", _model(m.Asset))


def balance() -> Call[m.Balance]:
    return Call("GET", "/balance/info", _model(m.Balance))


def _orders(cls: type[M]) -> Callable[[Any], list[M]]:
    def parse(data: Any) -> list[M]:
        return [cls.model_validate(item) for item in data.get("order_list", [])]

    return parse


def bills(page: int, page_size: int) -> Call[list[m.Bill]]:
    params = {"page": page, "page_size": page_size}
    return Call("GET", "/bill/list", _orders(m.Bill), params=params)


def recharges(page: int, page_size: int) -> Call[list[m.Recharge]]:
    params = {"page": page, "page_size": page_size}
    return Call("GET", "/recharge/list", _orders(m.Recharge), params=params)


def model_video(
    inputs: Mapping[str, Any], key: str, request_id: str | None, max_cost: str | None = None
) -> Call[m.ModelRun]:
    body = _compact(
        {
            "idempotency_key": key,
            "request_id": request_id,
            "inputs": dict(inputs),
            "max_cost": max_cost,
        }
    )
    return Call("POST", "/model-runs/videos", _model(m.ModelRun), body=body)


def model_run(run_id: str) -> Call[m.ModelRun]:
    return Call("GET", "/model-runs/info", _model(m.ModelRun), params={"run_id": run_id})


def model_cancel(run_id: str) -> Call[m.ModelRun]:
    return Call("POST", "/model-runs/cancel", _model(m.ModelRun), body={"run_id": run_id})
