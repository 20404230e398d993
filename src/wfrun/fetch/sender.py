"""SSRF-safe POSTs to webhook receivers: the media fetcher's address policy, pinning and
timeouts, for a request with a body.

Redirects are NOT followed: a 3xx is an unsuccessful attempt like any other non-2xx (Standard
Webhooks receivers answer 2xx; following would re-send the signed body somewhere else). The
URL is checked statically at submit (:func:`check_url`) and resolved and checked again on every
attempt, pinned to the checked address, so DNS rebinding cannot steer a delivery inside.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from wfrun.fetch.addresses import check_address
from wfrun.fetch.errors import FetchError, FetchFailed, FetchRefused
from wfrun.fetch.fetcher import SafeFetcher
from wfrun.fetch.policy import FetchPolicy
from wfrun.fetch.target import Target, display_url, parse_target

_LOCAL_NAMES = ("localhost", ".localhost", ".local", ".internal")


@dataclass(frozen=True)
class Sent:
    """One attempt's outcome: the status (None when no answer came), the first bytes of the
    answer, the time taken and, when it failed before an answer, why."""

    status_code: int | None
    body: bytes
    latency_ms: int
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse a receiver URL without any lookup: scheme, credentials, port, an IP literal
    outside the allow-lists, or a name that is local by definition (``localhost``, ``.local``).

    Raises:
        FetchRefused: why (the caller names the field).
    """
    target = parse_target(url)
    if target.host in policy.allow_hosts:
        return
    if target.literal is not None:
        reason = check_address(target.literal, policy)
        if reason is not None:
            raise FetchRefused(f"{display_url(target.url)}: {reason}")
    elif target.host == _LOCAL_NAMES[0] or target.host.endswith(_LOCAL_NAMES[1:]):
        raise FetchRefused(f"{display_url(target.url)}: host {target.host} is a local name")


class SafeSender(SafeFetcher):
    """POSTs a signed body to a receiver under the fetch policy (one hop, no redirects)."""

    async def post(self, url: str, body: bytes, headers: dict[str, str], cap: int) -> Sent:
        """Send; never raises for the receiver's sake: every failure is a :class:`Sent` with
        ``error`` set (refused address, DNS, connect, timeout)."""
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._policy.timeout_seconds):
                status, answer = await self._post(parse_target(url), body, headers, cap)
        except TimeoutError:
            error = f"no answer within {self._policy.timeout_seconds:g}s"
            return Sent(None, b"", _ms(started), error)
        except FetchError as exc:
            return Sent(None, b"", _ms(started), exc.detail)
        except httpx.HTTPError as exc:
            return Sent(None, b"", _ms(started), f"{type(exc).__name__}: {exc}")
        return Sent(status, answer, _ms(started), None)

    async def _post(
        self, target: Target, body: bytes, headers: dict[str, str], cap: int
    ) -> tuple[int, bytes]:
        addresses = await self._checked_addresses(target)
        for ip in addresses:
            request = self._request(target, ip)
            request = httpx.Request(
                "POST",
                request.url,
                headers={**request.headers, **headers},
                content=body,
                extensions=request.extensions,
            )
            try:
                response = await self._send(request)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if ip == addresses[-1]:
                    raise
                continue
            try:
                return response.status_code, await _head(response, cap)
            finally:
                await response.aclose()
        raise FetchFailed(f"{display_url(target.url)}: no address to connect to")


async def _head(response: httpx.Response, cap: int) -> bytes:
    kept = bytearray()
    async for chunk in response.aiter_bytes():
        kept += chunk[: cap - len(kept)]
        if len(kept) >= cap:
            break
    return bytes(kept)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
