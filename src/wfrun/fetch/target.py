"""URL validation and pinned-request construction for one fetch hop.

A :class:`Target` is a URL that passed the static checks (http/https only, no userinfo, a
non-empty host, a port in 1..65535). The connection is always made to an already-checked IP:
:func:`pinned_url` swaps the host for that IP, while :func:`host_header` and
:func:`sni_hostname` keep HTTP routing and TLS verification tied to the original hostname.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from wfrun.fetch.addresses import IPAddress, parse_host_literal
from wfrun.fetch.errors import FetchFailed, FetchRefused

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_HOSTNAME = re.compile(r"[a-z0-9_.-]+")


@dataclass(frozen=True)
class Target:
    """One validated URL.

    Attributes:
        url: The URL as the user (or a redirect) gave it; never sent to the network as is.
        host: ASCII (IDNA-encoded), lowercase host without IPv6 brackets.
        port: Effective port (scheme default filled in).
        literal: The address if ``host`` is an IP literal in any spelling, else None.
    """

    url: httpx.URL
    host: str
    port: int
    literal: IPAddress | None


def parse_target(raw: str | httpx.URL) -> Target:
    """Validate a URL statically (no DNS).

    Args:
        raw: The URL string or an already parsed URL (e.g. a resolved redirect).

    Returns:
        The validated target.

    Raises:
        FetchRefused: Unparseable URL, scheme other than http/https, credentials in the
            URL, empty or malformed host, or a port outside 1..65535.
    """
    try:
        url = httpx.URL(raw)
    except httpx.InvalidURL as exc:
        raise FetchRefused(f"invalid URL {str(raw)!r}: {exc}") from exc
    if url.scheme not in DEFAULT_PORTS:
        shown = display_url(url)
        raise FetchRefused(f"scheme {url.scheme!r} of {shown} is not allowed (only http/https)")
    host = url.raw_host.decode("ascii").lower()
    if url.userinfo:
        raise FetchRefused(f"URL for host {host!r} carries credentials (userinfo)")
    if not host:
        raise FetchRefused(f"URL {url} has an empty host")
    port = DEFAULT_PORTS[url.scheme] if url.port is None else url.port
    if not 1 <= port <= 65535:
        raise FetchRefused(f"port {port} of {url} is outside 1..65535")
    literal = parse_host_literal(host)
    if literal is None and not _HOSTNAME.fullmatch(host):
        raise FetchRefused(f"host {host!r} of {url} is neither a hostname nor an IP address")
    return Target(url=url, host=host, port=port, literal=literal)


def display_url(url: httpx.URL) -> str:
    """The URL as text with any userinfo removed, for error details and logs."""
    return str(url.copy_with(userinfo=b"")) if url.userinfo else str(url)


def redirect_target(current: Target, response: httpx.Response) -> Target:
    """Resolve and validate the ``Location`` of a redirect response.

    Args:
        current: The target that answered with a redirect (relative locations join it).
        response: The 3xx response.

    Returns:
        The validated next target (its address is still to be checked).

    Raises:
        FetchFailed: The redirect has no Location header.
        FetchRefused: The Location is invalid or fails :func:`parse_target`.
    """
    location = response.headers.get("location")
    if not location:
        status = response.status_code
        raise FetchFailed(f"{current.url} answered HTTP {status} without a Location header")
    try:
        joined = current.url.join(location)
    except httpx.InvalidURL as exc:
        raise FetchRefused(f"{current.url} redirects to invalid URL {location!r}") from exc
    return parse_target(joined)


def pinned_url(target: Target, ip: IPAddress) -> httpx.URL:
    """The URL actually requested: the target's with its host replaced by ``ip``."""
    return target.url.copy_with(host=str(ip), port=target.port)


def host_header(target: Target) -> str:
    """The ``Host`` header for the original host (port only if not the default)."""
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == DEFAULT_PORTS[target.url.scheme] else f"{host}:{target.port}"


def sni_hostname(target: Target) -> str | None:
    """The TLS server name to send and verify, or None (plain http, or an IP literal)."""
    if target.url.scheme != "https" or target.literal is not None:
        return None
    return target.host
