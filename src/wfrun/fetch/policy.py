"""The fetch policy: limits and the (closed by default) address allow-lists."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class FetchPolicy:
    """Limits and exemptions for one :class:`~wfrun.fetch.SafeFetcher`.

    Attributes:
        max_bytes: Largest body accepted; one byte more raises ``FetchTooLarge``.
        timeout_seconds: Bound on the whole fetch, DNS and redirects included.
        connect_timeout_seconds: Bound on each TCP (and TLS) connect.
        max_redirects: How many redirects are followed before ``FetchFailed``.
        allow_hosts: Exact lowercase hostnames exempt from the address check.
        allow_networks: Networks whose addresses are allowed although not public.
        user_agent: ``User-Agent`` header sent with every request.
    """

    max_bytes: int = 100 * 1024 * 1024
    timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 10.0
    max_redirects: int = 5
    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    user_agent: str = "wfrun-fetcher/1"

    def __post_init__(self) -> None:
        if self.max_bytes < 0 or self.max_redirects < 0:
            raise ValueError("max_bytes and max_redirects must not be negative")
        if self.timeout_seconds <= 0 or self.connect_timeout_seconds <= 0:
            raise ValueError("timeouts must be positive")
        object.__setattr__(self, "allow_hosts", frozenset(h.lower() for h in self.allow_hosts))
