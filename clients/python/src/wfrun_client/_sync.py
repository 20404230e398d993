"""The synchronous client: :class:`Client` and its resources over one ``httpx.Client``.

Requests, parsing and retry decisions come from ``_core``/``_ops``/``_follow``; this module
only sends, sleeps and reads streams (``_async`` is its twin).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Self, TypeVar, overload

import httpx

from wfrun_client import _core, _ops, webhooks
from wfrun_client import models as m
from wfrun_client._follow import (
    Follower,
    OnEvent,
    check_deadline,
    pause,
)
from wfrun_client._sync_transport import SyncTransport

T = TypeVar("T")


class Runs:
    """Workflow runs: submit, quote, follow, cancel, list, download."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    @overload
    def submit(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = ...,
        *,
        idempotency_key: str | None = ...,
        revision_id: str | None = ...,
        accept_external_cost_risk: bool | None = ...,
        max_cost: str | None = ...,
        wait: Literal[False] = ...,
        on_event: OnEvent | None = ...,
        timeout: float | None = ...,
        **extra: Any,
    ) -> m.SubmitResult: ...

    @overload
    def submit(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = ...,
        *,
        idempotency_key: str | None = ...,
        revision_id: str | None = ...,
        accept_external_cost_risk: bool | None = ...,
        max_cost: str | None = ...,
        wait: Literal[True],
        on_event: OnEvent | None = ...,
        timeout: float | None = ...,
        **extra: Any,
    ) -> m.RunInfo: ...

    def submit(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        revision_id: str | None = None,
        accept_external_cost_risk: bool | None = None,
        max_cost: str | None = None,
        wait: bool = False,
        on_event: OnEvent | None = None,
        timeout: float | None = None,
        **extra: Any,
    ) -> m.SubmitResult | m.RunInfo:
        """Submits a paid run. The idempotency key (made here unless given) is resent on every
        retry, so a lost answer never makes a second run. ``wait=True`` returns the ended
        run's ``run/info`` instead of the submit answer. ``extra``: further body fields
        (``callback_url``, …) as the server accepts them. ``max_cost`` (an amount string,
        e.g. ``"0.50"``): a quote above it raises ``MaxCostExceeded`` (nothing frozen); a run
        reaching it is stopped and charged exactly it (``COST_LIMIT_REACHED``)."""
        body = _ops.run_body(
            workflow_id, inputs, revision_id, accept_external_cost_risk, extra, max_cost
        )
        key = idempotency_key or _ops.new_idempotency_key()
        submitted = self._t.send(_ops.submit(body, key))
        if not wait:
            return submitted
        return self.wait(submitted.run_order_id, on_event=on_event, timeout=timeout)

    def quote(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        revision_id: str | None = None,
        accept_external_cost_risk: bool | None = None,
        max_cost: str | None = None,
        **extra: Any,
    ) -> m.Quote:
        """Validates ``inputs`` and prices the run, with no side effects (``MaxCostExceeded``
        when the quote is above ``max_cost``)."""
        body = _ops.run_body(
            workflow_id, inputs, revision_id, accept_external_cost_risk, extra, max_cost
        )
        return self._t.send(_ops.quote(body))

    def get(self, run_id: str) -> m.RunInfo:
        """The billing view (``run/info``): status, costs, outputs."""
        return self._t.send(_ops.run_info(run_id))

    info = get

    def execution(self, run_id: str) -> m.Execution:
        """The live view (``run/execution``): queue place, progress, logs, outputs."""
        return self._t.send(_ops.execution(run_id))

    def cancel(self, run_id: str) -> m.CancelResult:
        """Cancels a queued or running run (idempotent; see ``cancel_outcome``)."""
        return self._t.send(_ops.cancel(run_id))

    def page(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        workflow_id: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
    ) -> m.Page[m.RunSummary]:
        """One page of ``run/list``: page ``page``, or with ``cursor`` (a ``next_cursor``, same
        filters) the page after it, ``page`` then ignored."""
        place = page if cursor is None else None
        return self._t.send(_ops.run_page(place, page_size, workflow_id, status, cursor))

    def list(
        self, *, workflow_id: str | None = None, status: str | None = None, page_size: int = 20
    ) -> Iterator[m.RunSummary]:
        """Every run of the caller, newest first, fetching page after page as it is read: each
        after the previous one's ``next_cursor``, so runs submitted meanwhile shift nothing
        (no run twice or skipped; by page number from a server without cursors)."""
        place: _ops.RunPlace | None = (1, None)
        while place is not None:
            number, cursor = place
            got = self.page(
                number or 1, page_size, workflow_id=workflow_id, status=status, cursor=cursor
            )
            yield from got.items
            place = _ops.next_run_place(got, place, page_size)

    def wait(
        self,
        run_id: str,
        *,
        on_event: OnEvent | None = None,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        stream: bool = True,
    ) -> m.RunInfo:
        """Blocks until the run ends; its final ``run/info``. Follows the event stream when
        the server has one, else polls ``run/execution`` every ``poll_interval`` s; either
        way ``on_event`` gets each status, queue place, progress, log line, the outputs and
        ``done`` once. Raises :class:`~wfrun_client.errors.WaitTimeout` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        follower = Follower(run_id, on_event)
        view = self.execution(run_id)
        if stream and not view.ended:
            follower.queued(view)
            if self._t.follow_stream(follower, deadline) and follower.final is not None:
                return follower.final
        while not follower.execution(view):
            check_deadline(deadline)
            self._t.sleep(pause(poll_interval, deadline))
            view = self.execution(run_id)
        return follower.finish(self.get(run_id))

    def download_outputs(self, run_id: str, dest: str | Path) -> dict[str, builtins.list[Path]]:
        """Writes the run's outputs into ``dest`` (media fetched through their signed links,
        text as ``<key>.txt``); the paths by output key."""
        info = self.get(run_id)
        written: dict[str, builtins.list[Path]] = {}
        for item in _core.plan_downloads(info.outputs, Path(dest)):
            if item.url is not None:
                self._t.download(item.url, item.path)
            else:
                item.path.parent.mkdir(parents=True, exist_ok=True)
                item.path.write_text(item.text or "", encoding="utf-8")
            written.setdefault(item.key, []).append(item.path)
        return written


class Assets:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def upload(
        self, path: str | Path, *, media_type: str | None = None, ttl_hours: int | None = None
    ) -> m.Asset:
        """Uploads a file (multipart); pass the answer's ``asset_uri`` as a media input."""
        return self._t.send(_ops.upload(path, media_type, ttl_hours))

    def get(self, asset_id: str) -> m.Asset:
        return self._t.send(_ops.asset(asset_id))


class ModelRuns:
    """External model runs (``/model-runs/*``, Seedance video)."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def videos(
        self,
        inputs: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        request_id: str | None = None,
        max_cost: str | None = None,
    ) -> m.ModelRun:
        """Submits a video task; the idempotency key is made here and reused on retries."""
        key = idempotency_key or _ops.new_idempotency_key()
        return self._t.send(_ops.model_video(inputs, key, request_id, max_cost))

    submit = videos

    def get(self, run_id: str) -> m.ModelRun:
        return self._t.send(_ops.model_run(run_id))

    info = get

    def cancel(self, run_id: str) -> m.ModelRun:
        return self._t.send(_ops.model_cancel(run_id))


class Account:
    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def balance(self) -> m.Balance:
        return self._t.send(_ops.balance())

    def bills(self, page: int = 1, page_size: int = 20) -> list[m.Bill]:
        return self._t.send(_ops.bills(page, page_size))

    def recharges(self, page: int = 1, page_size: int = 20) -> list[m.Recharge]:
        return self._t.send(_ops.recharges(page, page_size))


class Workflows:
    """The workflow market: what the caller can run."""

    def __init__(self, transport: SyncTransport) -> None:
        self._t = transport

    def page(
        self,
        page: int = 1,
        page_size: int = 20,
        *,
        keyword: str | None = None,
        tag: str | None = None,
    ) -> m.Page[m.WorkflowSummary]:
        return self._t.send(_ops.workflow_page(page, page_size, keyword, tag))

    def list(
        self, *, keyword: str | None = None, tag: str | None = None, page_size: int = 20
    ) -> Iterator[m.WorkflowSummary]:
        number: int | None = 1
        while number is not None:
            got = self.page(number, page_size, keyword=keyword, tag=tag)
            yield from got.items
            number = _core.next_page(number, page_size, got.total, len(got.items))

    def get(self, workflow_id: str) -> m.Workflow:
        """The published revision with its input and output manifests."""
        return self._t.send(_ops.workflow(workflow_id))


class Client:
    """wfrun's (and chenyu's) Open API v2, synchronously.

    ``base_url``: the server root or its ``/api/open/v2`` prefix (default ``WFRUN_BASE_URL``,
    else ``http://127.0.0.1:8000``); ``api_key`` defaults to ``WFRUN_API_KEY``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        retry: _core.RetryPolicy | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._transport = SyncTransport(
            base_url, api_key, timeout=timeout, retry=retry or _core.RetryPolicy(), http=http_client
        )
        self.runs = Runs(self._transport)
        self.assets = Assets(self._transport)
        self.model_runs = ModelRuns(self._transport)
        self.account = Account(self._transport)
        self.workflows = Workflows(self._transport)
        self.webhooks = webhooks

    @property
    def base_url(self) -> str:
        return self._transport.root

    def close(self) -> None:
        if self._transport.owns_http:
            self._transport.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
