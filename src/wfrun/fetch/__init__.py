"""SSRF-safe fetcher for user-supplied media URLs (reliability.md INV-23..25).

Only http/https without credentials; every hop's host is resolved once, every resolved
address must be globally routable (or explicitly allowed), and the connection is pinned to the
checked address with the original hostname kept for ``Host``, SNI and certificate checks.
Redirects are followed manually and re-checked; size and total time are capped.
"""

from wfrun.fetch.addresses import check_address, parse_host_literal
from wfrun.fetch.errors import FetchError, FetchFailed, FetchRefused, FetchTooLarge
from wfrun.fetch.fetcher import Fetched, Resolver, SafeFetcher
from wfrun.fetch.policy import FetchPolicy

__all__ = [
    "FetchError",
    "FetchFailed",
    "FetchPolicy",
    "FetchRefused",
    "FetchTooLarge",
    "Fetched",
    "Resolver",
    "SafeFetcher",
    "check_address",
    "parse_host_literal",
]
