"""The sans-IO core both clients share: what to send, how to read the answer, when to retry.

:class:`Call` describes one API request and how its ``data`` becomes a model; the sync and
async transports (``_transport``) only move bytes and sleep, so both clients build the same
requests, parse the same way and retry the same failures.
"""

from __future__ import annotations

import email.utils
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import httpx

from wfrun_client import errors

T = TypeVar("T")

API_PREFIX = "/api/open/v2"
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
USER_AGENT = "wfrun-client-python/0.1.0"

Retry = Literal["safe", "unsent"]
"""``safe``: the request may be repeated (reads, idempotent writes): retry connection errors
of any kind and 429/503. ``unsent``: repeating could do the work twice (an upload), so retry
only failures that prove the server did nothing: could not connect, 429 and 503."""

RETRY_STATUSES = frozenset({429, 503})
UNSENT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def api_root(base_url: str | None) -> str:
    """The API prefix URL from a server root or from the prefix itself (both accepted);
    ``None`` reads ``WFRUN_BASE_URL``, else the local default."""
    url = (base_url or os.environ.get("WFRUN_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    return url if url.endswith(API_PREFIX) else url + API_PREFIX


def api_key(value: str | None) -> str | None:
    return value or os.environ.get("WFRUN_API_KEY") or None


@dataclass(frozen=True)
class Upload:
    """A multipart upload: the file is reopened for every attempt."""

    path: Path
    fields: dict[str, str]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API request (path relative to the API prefix) and the parser of its ``data``."""

    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] | None = None
    body: dict[str, Any] | None = None
    upload: Upload | None = None
    retry: Retry = "safe"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most ``max_retries`` more attempts, exponential backoff from
    ``backoff`` seconds capped at ``max_backoff``, a server's ``Retry-After`` honoured up to
    ``max_retry_after``."""

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, call: Call[Any], attempt: int, failure: Exception) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None: give up, raise."""
        if attempt > self.max_retries:
            return None
        fallback = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        if isinstance(failure, errors.APIError):
            if failure.status_code not in RETRY_STATUSES:
                return None
            if failure.retry_after is None:
                return fallback
            return min(failure.retry_after, self.max_retry_after)
        if isinstance(failure, httpx.TransportError):
            safe = call.retry == "safe" or isinstance(failure, UNSENT_ERRORS)
            return fallback if safe else None
        return None


def headers(key: str | None) -> dict[str, str]:
    sent = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    return sent


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` in seconds: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def unwrap(response: httpx.Response) -> Any:
    """The envelope's ``data`` of a success; raises the error class of a failure.

    Raises:
        errors.APIError: a failure envelope, or an answer that is not an envelope.
    """
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    ok = isinstance(body, Mapping) and body.get("code") == 0 and "data" in body
    if response.status_code < 400 and ok:
        assert isinstance(body, Mapping)
        return body["data"]
    status = response.status_code
    if status < 400:  # chenyu-style failure inside a 200, or no envelope at all
        status = 400 if isinstance(body, Mapping) and "code" in body else 502
    raise errors.from_envelope(
        status,
        body,
        retry_after=retry_after(response.headers.get("Retry-After")),
        request_id=response.headers.get("X-Request-Id"),
    )


def connection_failed(call: Call[Any], failure: Exception) -> errors.ConnectionFailed:
    return errors.ConnectionFailed(
        f"{call.method} {call.path}: {type(failure).__name__}: {failure}"
    )


def next_page(page: int, page_size: int, total: int, received: int) -> int | None:
    """The page after ``page``, or None when the list is exhausted."""
    if received == 0 or page * page_size >= total:
        return None
    return page + 1


@dataclass(frozen=True)
class Download:
    """One file ``download_outputs`` writes: fetched from ``url``, or ``text`` written as is."""

    key: str
    path: Path
    url: str | None = None
    text: str | None = None


def _suffix(url: str) -> str:
    name = httpx.URL(url).path.rsplit("/", 1)[-1]
    return Path(name).suffix if "." in name else ""


def _one(key: str, value: Any, dest: Path, index: int | None, kind: str | None) -> Download | None:
    stem = key if index is None else f"{key}_{index}"
    if value is None:
        return None
    if (
        kind == "text"
        or not isinstance(value, str)
        or not value.startswith(("http://", "https://", "/"))
    ):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        return Download(key, dest / f"{stem}.txt", text=text)
    return Download(key, dest / f"{stem}{_suffix(value)}", url=value)


def plan_downloads(
    outputs: Mapping[str, Any], dest: Path, kinds: Mapping[str, str] | None = None
) -> list[Download]:
    """The files for a run's ``outputs``: ``<key>.<ext>`` for one value, ``<key>_<n>.<ext>``
    for each of a list; text outputs become ``<key>.txt``."""
    planned: list[Download] = []
    for key, value in outputs.items():
        kind = (kinds or {}).get(key)
        if isinstance(value, list) and kind != "text":
            items = [_one(key, v, dest, i, kind) for i, v in enumerate(value)]
        elif isinstance(value, list):
            items = [_one(key, "\n".join(map(str, value)), dest, None, kind)]
        else:
            items = [_one(key, value, dest, None, kind)]
        planned.extend(d for d in items if d is not None)
    return planned


def absolute(url: str, root: str) -> str:
    """A link as given, or joined to the server root when the server sent a path."""
    if url.startswith("/"):
        return root.removesuffix(API_PREFIX) + url
    return url
