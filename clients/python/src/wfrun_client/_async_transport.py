"""The asynchronous transport: sends ``_core.Call``s with the retry policy, follows event
streams, downloads links. Everything it decides comes from ``_core`` and ``_follow``."""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Any, TypeVar

import httpx

from wfrun_client import _core, errors
from wfrun_client._follow import (
    EVENTS_PATH,
    Follower,
    SSEParser,
    StreamUnavailable,
    check_deadline,
    read_timeout,
    stream_params,
    stream_unavailable,
)

T = TypeVar("T")


class AsyncTransport:
    """Sends :class:`~wfrun_client._core.Call`s with the retry policy; reads event streams."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        *,
        timeout: float,
        retry: _core.RetryPolicy,
        http: httpx.AsyncClient | None,
    ) -> None:
        self.root = _core.api_root(base_url)
        self.headers = _core.headers(_core.api_key(api_key))
        self.timeout, self.policy = timeout, retry
        self.http = http or httpx.AsyncClient(timeout=timeout)
        self.owns_http = http is None
        """A client the caller passed in is the caller's to close."""
        self.sleep = asyncio.sleep

    async def _once(self, call: _core.Call[Any]) -> httpx.Response:
        url, sent = self.root + call.path, self.headers | call.headers
        if call.upload is None:
            return await self.http.request(
                call.method, url, params=call.params, json=call.body, headers=sent
            )
        path = call.upload.path
        with path.open("rb") as handle:
            mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            files = {"file": (path.name, handle, mime)}
            return await self.http.post(url, files=files, data=call.upload.fields, headers=sent)

    async def send(self, call: _core.Call[T]) -> T:
        """The parsed answer, retrying what ``call.retry`` allows."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return call.parse(_core.unwrap(await self._once(call)))
            except (errors.APIError, httpx.TransportError) as failure:
                delay = self.policy.delay(call, attempt, failure)
                if delay is None and isinstance(failure, httpx.TransportError):
                    raise _core.connection_failed(call, failure) from failure
                if delay is None:
                    raise
                await self.sleep(delay)

    async def follow_stream(self, follower: Follower, deadline: float | None) -> bool:
        """Follows the run's event stream to ``done`` (True); False when the server has no
        stream or it kept failing (the caller polls instead)."""
        failures = 0
        while failures <= self.policy.max_retries:
            try:
                if await self._stream_once(follower, deadline):
                    return True
            except httpx.TransportError:
                check_deadline(deadline)
                failures += 1
                await self.sleep(min(self.policy.backoff * 2.0**failures, self.policy.max_backoff))
            except StreamUnavailable:
                return False
        return False

    async def _stream_once(self, follower: Follower, deadline: float | None) -> bool:
        params = stream_params(follower.run_id, follower.last_id)
        timeout = httpx.Timeout(self.timeout, read=read_timeout(deadline))
        headers = self.headers | {"Accept": "text/event-stream"}
        url = self.root + EVENTS_PATH
        async with self.http.stream(
            "GET", url, params=params, headers=headers, timeout=timeout
        ) as got:
            await _refuse(got)
            parser = SSEParser()
            async for line in got.aiter_lines():
                event = parser.feed(line)
                if event is not None and follower.stream(event):
                    return True
                check_deadline(deadline)
        return False

    async def download(self, url: str, path: Path) -> None:
        """Fetches a signed link (no API key: it may point at another host, e.g. S3)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        async with self.http.stream("GET", _core.absolute(url, self.root)) as got:
            if got.status_code >= 400:
                await got.aread()
                _core.unwrap(got)
            with path.open("wb") as out:
                async for chunk in got.aiter_bytes():
                    out.write(chunk)


async def _refuse(got: httpx.Response) -> None:
    """Raises when the stream answer is not a stream: unavailable (poll) or an API error."""
    if stream_unavailable(got.status_code, got.headers.get("content-type", "")):
        raise StreamUnavailable
    if got.status_code >= 400:
        await got.aread()
        try:
            _core.unwrap(got)
        except errors.APIError as failure:
            if failure.status_code in _core.RETRY_STATUSES:
                raise StreamUnavailable from failure
            raise
