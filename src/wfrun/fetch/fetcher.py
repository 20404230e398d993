"""SSRF-safe fetching of user-supplied media URLs (reliability.md INV-23..25).

Rules enforced on every hop (the first URL and each redirect):

* only ``http``/``https``; no userinfo; non-empty host; port in 1..65535;
* the host is resolved exactly once (IP literals in any spelling are parsed, not resolved)
  and the fetch is refused if ANY resolved address is forbidden by
  :func:`~wfrun.fetch.addresses.check_address`, unless the host is in ``allow_hosts``;
* the connection is PINNED to a checked address: the request goes to ``http(s)://<ip>:<port>``
  with ``Host: <original host[:port]>`` and, for https, the httpcore ``sni_hostname``
  extension so SNI and certificate verification use the original hostname; httpx never
  resolves a name, so DNS rebinding between check and connect is impossible;
* keep-alive is off, so a TLS connection verified for one hostname is never reused for
  another hostname that shares its IP;
* requests go straight to an httpx *transport*, not a client: nothing but this module reads
  a response's ``Location`` (httpx's client parses it even when not following redirects,
  and raises non-httpx errors on malformed ones), and there is no cookie jar at all;
* redirects (301/302/303/307/308) are followed manually, at most ``max_redirects``;
* the body is streamed and abandoned as soon as it exceeds ``max_bytes`` (or when
  Content-Length already says so); the whole fetch is bounded by ``timeout_seconds``;
* no cookies are stored or sent, no credentials, no proxies or netrc from the environment;
* every failure is a :class:`~wfrun.fetch.errors.FetchError` with a precise detail: a
  refused URL (or hop) is ``FetchRefused``; DNS, connect, read, status and redirect-count
  failures are ``FetchFailed``; anything this module did not foresee becomes
  ``FetchUnexpected`` (logged with its traceback) instead of escaping to the caller.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import httpx

from wfrun.fetch.addresses import IPAddress, check_address
from wfrun.fetch.errors import (
    FetchError,
    FetchFailed,
    FetchRefused,
    FetchTooLarge,
    FetchUnexpected,
)
from wfrun.fetch.policy import FetchPolicy
from wfrun.fetch.target import (
    REDIRECT_STATUSES,
    Target,
    display_url,
    host_header,
    parse_target,
    pinned_url,
    redirect_target,
    sni_hostname,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fetched:
    """A successfully fetched body.

    Attributes:
        data: The complete body (at most ``policy.max_bytes``).
        content_type: Final response media type, lowercased, parameters stripped.
        final_url: The URL (after redirects) the body came from, with its original hostname.
    """

    data: bytes
    content_type: str | None
    final_url: str


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve ``host`` with the event loop's ``getaddrinfo`` (IPv4 and IPv6).

    Args:
        host: Hostname to resolve.
        port: Destination port (passed through to ``getaddrinfo``).

    Returns:
        The distinct addresses, in resolver order.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class SafeFetcher:
    """Fetches user-supplied URLs without letting them reach internal addresses."""

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Create a fetcher.

        Args:
            policy: Limits and allow-lists.
            resolver: ``(host, port) -> addresses``; defaults to :func:`system_resolver`.
            ssl_context: TLS context for verification (default: httpx's, verifying).
        """
        self._policy = policy
        self._resolver = resolver or system_resolver
        self._timeout = httpx.Timeout(
            policy.timeout_seconds, connect=policy.connect_timeout_seconds
        ).as_dict()
        self._transport = httpx.AsyncHTTPTransport(
            verify=True if ssl_context is None else ssl_context,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the underlying HTTP transport."""
        await self._transport.aclose()

    async def fetch(self, url: str) -> Fetched:
        """Fetch ``url`` under the policy.

        Args:
            url: The user-supplied URL.

        Returns:
            The body, its content type and the final URL.

        Raises:
            FetchRefused: Forbidden scheme, credentials, port or address (on any hop).
            FetchTooLarge: The body exceeds ``max_bytes``.
            FetchFailed: DNS or connection failure, timeout, non-2xx status, or too many
                redirects (``FetchUnexpected``, a subclass, for a failure not foreseen here).
        """
        seconds = self._policy.timeout_seconds
        try:
            async with asyncio.timeout(seconds):
                return await self._follow(parse_target(url))
        except TimeoutError:
            raise FetchFailed(f"fetching {url!r} took longer than {seconds:g}s") from None
        except FetchError:
            raise
        except Exception as exc:  # the contract: nothing but a FetchError leaves fetch()
            log.exception("fetching %r failed in a way the fetcher does not map", url)
            detail = f"fetching {url!r} failed: {type(exc).__name__}: {exc}"
            raise FetchUnexpected(detail) from exc

    async def _follow(self, target: Target) -> Fetched:
        first = target
        for _ in range(self._policy.max_redirects + 1):
            outcome = await self._hop(target)
            if isinstance(outcome, Fetched):
                return outcome
            target = outcome
        limit = self._policy.max_redirects
        raise FetchFailed(f"{display_url(first.url)} redirected more than {limit} times")

    async def _hop(self, target: Target) -> Fetched | Target:
        addresses = await self._checked_addresses(target)
        try:
            response = await self._connect(target, addresses)
            try:
                return await self._handle(target, response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            pins = ", ".join(map(str, addresses))
            where = f"{display_url(target.url)} ({target.host} pinned to {pins})"
            raise FetchFailed(f"fetching {where} failed: {type(exc).__name__}: {exc}") from exc

    async def _checked_addresses(self, target: Target) -> list[IPAddress]:
        if target.literal is not None:
            addresses = [target.literal]
        else:
            addresses = await self._resolve(target)
        if target.host in self._policy.allow_hosts:
            return addresses
        for ip in addresses:
            reason = check_address(ip, self._policy)
            if reason is not None:
                raise FetchRefused(f"{display_url(target.url)}: host {target.host} -> {reason}")
        return addresses

    async def _resolve(self, target: Target) -> list[IPAddress]:
        try:
            answers = await self._resolver(target.host, target.port)
        except (OSError, ValueError) as exc:  # ValueError: the resolver's IDNA step
            reason = f"{type(exc).__name__}: {exc}"
            raise FetchFailed(f"cannot resolve host {target.host}: {reason}") from exc
        try:
            addresses = [_unscoped(ipaddress.ip_address(answer)) for answer in answers]
        except ValueError as exc:
            raise FetchFailed(f"resolver gave a bad address for {target.host}: {exc}") from exc
        if not addresses:
            raise FetchFailed(f"host {target.host} resolved to no addresses")
        return addresses

    async def _connect(self, target: Target, addresses: list[IPAddress]) -> httpx.Response:
        for ip in addresses[:-1]:
            try:
                return await self._send(self._request(target, ip))
            except (httpx.ConnectError, httpx.ConnectTimeout):
                continue
        return await self._send(self._request(target, addresses[-1]))

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One request, one response, its body still unread: the transport alone, so the
        response is exactly what the server sent (no redirect or cookie processing)."""
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    def _request(self, target: Target, ip: IPAddress) -> httpx.Request:
        headers = {
            "Host": host_header(target),
            "User-Agent": self._policy.user_agent,
            "Accept": "*/*",
            "Accept-Encoding": "identity",
            "Connection": "close",
        }
        extensions: dict[str, object] = {"timeout": self._timeout}
        sni = sni_hostname(target)
        if sni is not None:
            extensions["sni_hostname"] = sni
        url = pinned_url(target, ip)
        return httpx.Request("GET", url, headers=headers, extensions=extensions)

    async def _handle(self, target: Target, response: httpx.Response) -> Fetched | Target:
        status = response.status_code
        if status in REDIRECT_STATUSES:
            return redirect_target(target, response)
        if not 200 <= status < 300:
            raise FetchFailed(f"{display_url(target.url)} answered HTTP {status}")
        data = await _read_capped(response, self._policy.max_bytes, target)
        return Fetched(data=data, content_type=_media_type(response), final_url=str(target.url))


def _unscoped(ip: IPAddress) -> IPAddress:
    return ipaddress.IPv6Address(int(ip)) if isinstance(ip, ipaddress.IPv6Address) else ip


async def _read_capped(response: httpx.Response, limit: int, target: Target) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FetchTooLarge(
            f"{display_url(target.url)} declares {declared} bytes, more than {limit}"
        )
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise FetchTooLarge(f"{display_url(target.url)} sent more than {limit} bytes")
    return bytes(body)


def _media_type(response: httpx.Response) -> str | None:
    value = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return value or None
