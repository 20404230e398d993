"""URL validation and pinned-request construction for one fetch hop.

A :class:`Target` is a URL that passed the static checks (http/https only, no userinfo, a
non-empty host that is an IP literal or a well-formed DNS name, a port in 1..65535). The connection is always made to an already-checked IP:
:func:`pinned_url` swaps the host for that IP, while :func:`host_header` and
:func:`sni_hostname` keep HTTP routing and TLS verification tied to the original hostname.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import idna

from wfrun.fetch.addresses import IPAddress, parse_host_literal
from wfrun.fetch.errors import FetchFailed, FetchRefused

DEFAULT_PORTS = {"http": 80, "https": 443}
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_LABEL = re.compile(r"[a-z0-9_-]+")
MAX_LABEL = 63
MAX_HOSTNAME = 253


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
    except (httpx.InvalidURL, ValueError) as exc:  # ValueError covers IDNA (UnicodeError)
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
    if literal is None:
        problem = hostname_problem(host)
        if problem is not None:
            raise FetchRefused(f"host {host!r} of {url} {problem}")
    return Target(url=url, host=host, port=port, literal=literal)


def hostname_problem(host: str) -> str | None:
    """Why ``host`` (lowercase ASCII, as httpx encodes it) is not a usable DNS name, or None.

    The resolver, TLS (SNI) and httpx each apply these rules later and raise their own
    exceptions (``UnicodeError``, ``ValueError``, ``idna.IDNAError``); checking them here turns
    every such host into a precise refusal before any lookup or connection.
    """
    name = host.removesuffix(".")
    if len(name) > MAX_HOSTNAME:
        return f"is longer than {MAX_HOSTNAME} characters ({len(name)})"
    for label in name.split("."):
        if not label:
            return "has an empty label"
        if len(label) > MAX_LABEL:
            return f"has a label longer than {MAX_LABEL} characters ({len(label)})"
        if not _LABEL.fullmatch(label):
            return "is neither a hostname nor an IP address"
        if label.startswith("xn--") and not _valid_a_label(label):
            return f"has label {label!r}, not a valid IDNA A-label"
    return None


def _valid_a_label(label: str) -> bool:
    try:
        idna.decode(label)
    except (idna.IDNAError, ValueError):  # IDNAError is a UnicodeError, hence a ValueError
        return False
    return True


def display_url(url: httpx.URL) -> str:
    """The URL as text with any userinfo removed, for error details and logs."""
    if not url.userinfo:
        return str(url)
    try:
        return str(url.copy_with(userinfo=b""))
    except httpx.InvalidURL:  # e.g. no scheme and a path starting "//": cut the text instead
        return str(url).replace(url.userinfo.decode("ascii") + "@", "", 1)


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
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchRefused(
            f"{display_url(current.url)} redirects to invalid URL {location!r}: {exc}"
        ) from exc
    try:
        return parse_target(joined)
    except FetchRefused as exc:
        raise FetchRefused(f"{display_url(current.url)} redirected: {exc.detail}") from exc


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
