"""Pure address rules: which IPs a fetch may connect to, and which host strings are IPs.

An address is allowed only if it is globally routable or inside ``policy.allow_networks``.
``ipaddress.is_global`` alone is not trusted (its answers differ between Python releases, e.g.
``192.0.0.9``, ``64:ff9b::7f00:1`` and ``2002:7f00:1::`` count as global), so explicit tables
of special-purpose ranges are checked first, IPv6 addresses that embed an IPv4 address
(IPv4-mapped, NAT64, 6to4, Teredo) are judged by the embedded address, and IPv6 outside the
global-unicast block ``2000::/3`` is refused.
"""

from __future__ import annotations

import ipaddress
import re
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from wfrun.fetch.policy import FetchPolicy

IPAddress = IPv4Address | IPv6Address

_V4_FORBIDDEN: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), label)
    for net, label in (
        ("0.0.0.0/8", "'this network' (unspecified)"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "carrier-grade NAT shared space"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local (cloud metadata)"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "an IETF protocol assignment"),
        ("192.0.2.0/24", "documentation"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation"),
        ("203.0.113.0/24", "documentation"),
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("240.0.0.0/4", "reserved"),
    )
)

_V6_FORBIDDEN: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), label)
    for net, label in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64"),
        ("100::/64", "discard-only"),
        ("2001::/23", "an IETF protocol assignment"),
        ("2001:db8::/32", "documentation"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "SRv6 SID space"),
        ("fc00::/7", "unique-local"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")
_GLOBAL_UNICAST = IPv6Network("2000::/3")
# Embeddings where the IPv6 address *is* the IPv4 destination, so its verdict decides.
_TRANSPARENT = frozenset({"IPv4-mapped", "NAT64"})
_ATON_PART = re.compile(r"0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]{0,9}")


def check_address(ip: IPAddress, policy: FetchPolicy) -> str | None:
    """Decide whether a fetch may connect to ``ip``.

    Args:
        ip: The address that would be connected to (an IPv6 zone id is ignored).
        policy: Supplies ``allow_networks``, which exempt addresses inside them.

    Returns:
        None if the address is allowed, else a reason such as ``"127.0.0.1 is loopback
        (127.0.0.0/8)"``.
    """
    if isinstance(ip, IPv6Address):
        ip = IPv6Address(int(ip))  # drop any zone id
    if any(ip in net for net in policy.allow_networks):
        return None
    if isinstance(ip, IPv4Address):
        return _ipv4_reason(ip)
    return _ipv6_reason(ip, policy)


def _ipv4_reason(ip: IPv4Address) -> str | None:
    for net, label in _V4_FORBIDDEN:
        if ip in net:
            return f"{ip} is {label} ({net})"
    if not ip.is_global:
        return f"{ip} is not globally routable"
    return None


def _ipv6_reason(ip: IPv6Address, policy: FetchPolicy) -> str | None:
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        kind, inner = embedded
        reason = check_address(inner, policy)
        if reason is not None:
            return f"{ip} embeds an IPv4 address ({kind}): {reason}"
        if kind in _TRANSPARENT:
            return None
    for net, label in _V6_FORBIDDEN:
        if ip in net:
            return f"{ip} is {label} ({net})"
    if ip not in _GLOBAL_UNICAST:
        return f"{ip} is outside global unicast {_GLOBAL_UNICAST}"
    if not ip.is_global:
        return f"{ip} is not globally routable"
    return None


def _embedded_ipv4(ip: IPv6Address) -> tuple[str, IPv4Address] | None:
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        return "NAT64", IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    return None


def parse_host_literal(host: str) -> IPAddress | None:
    """Recognise a host that is an IP address in any spelling a resolver would accept.

    Handles dotted quads, the ``inet_aton`` forms (decimal ``2130706433``, hex
    ``0x7f000001``, octal ``0177.0.0.1``, short ``127.1``, one trailing dot), bracketed or bare
    IPv6, and IPv6 with a zone id (``fe80::1%eth0`` or URL-encoded ``%25eth0``; dropped).

    Args:
        host: A URL host, with or without IPv6 brackets.

    Returns:
        The address, or None if ``host`` is a name rather than an IP literal.
    """
    if host.startswith("[") and host.endswith("]"):
        return _parse_ipv6(host[1:-1])
    if ":" in host:
        return _parse_ipv6(host)
    return _parse_ipv4(host)


def _parse_ipv6(text: str) -> IPv6Address | None:
    try:
        return IPv6Address(text.split("%", 1)[0])
    except ValueError:
        return None


def _parse_ipv4(text: str) -> IPv4Address | None:
    parts = text.removesuffix(".").split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_aton_part(part) for part in parts]
    if any(value is None for value in values):
        return None
    return _combine([value for value in values if value is not None])


def _aton_part(part: str) -> int | None:
    if not _ATON_PART.fullmatch(part):
        return None
    if part[:2] in ("0x", "0X"):
        return int(part, 16)
    return int(part, 8) if part.startswith("0") else int(part)


def _combine(values: list[int]) -> IPv4Address | None:
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (4 - len(head)):
        return None
    number = 0
    for value in head:
        number = number << 8 | value
    return ipaddress.IPv4Address(number << 8 * (4 - len(head)) | last)
