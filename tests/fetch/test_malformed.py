"""Malformed URLs and redirect targets: every failure of ``fetch`` is a ``FetchError``.

Issue 10 measured these crashing the runner (UnicodeError from the resolver's IDNA step,
``httpx.InvalidURL`` and ``idna`` errors while httpx parsed a redirect's ``Location``): the run
then burned three leases and fetched the URL three times. Here each one is refused (or failed)
precisely, once, and a property test holds the contract for arbitrary input.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.fetch.conftest import Servers
from tests.fetch.support import Reply
from wfrun.fetch import FetchError, FetchFailed, FetchPolicy, FetchRefused, SafeFetcher
from wfrun.fetch.errors import FetchUnexpected
from wfrun.fetch.fetcher import system_resolver

ONLY_LEGIT = (ipaddress.ip_network("127.0.0.2/32"),)
POLICY = FetchPolicy(allow_networks=ONLY_LEGIT, timeout_seconds=3.0, connect_timeout_seconds=1.0)
Connects = list[tuple[str, int]]
T = TypeVar("T", bound=Callable[..., Any])


class RecordingResolver:
    """The real system resolver, recording what it was asked (so a test can prove a URL was
    refused before any DNS lookup)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return await system_resolver(host, port)


class LoopbackResolver:
    """Every name resolves to the legit server's address (127.0.0.2), never through DNS, after
    the IDNA step ``socket.getaddrinfo`` applies to a name before any query (where issue 10's
    UnicodeErrors came from)."""

    async def __call__(self, host: str, port: int) -> list[str]:
        host.encode("idna")
        return ["127.0.0.2"]


LONG_LABEL = "a" * 64
MALFORMED_HOSTS = {
    "http://a..b/x.png": "empty label",
    f"http://{LONG_LABEL}.example/x.png": "longer than 63",
    f"http://{LONG_LABEL}/x.png": "longer than 63",
    "https://.com/x.png": "empty label",
    "http://a.b../x.png": "empty label",
    "http://" + ".".join(["a" * 60] * 5) + "/x": "longer than 253",
    "http://xn--/x.png": "not a valid IDNA",
    "http://xn--a.example/x.png": "not a valid IDNA",
    "http://ok.xn--zz/x.png": "not a valid IDNA",
}


@pytest.mark.parametrize("url", sorted(MALFORMED_HOSTS))
async def test_malformed_host_is_refused_before_dns_and_connect(
    url: str, connects: Connects
) -> None:
    resolver = RecordingResolver()
    async with SafeFetcher(POLICY, resolver=resolver) as fetcher:
        with pytest.raises(FetchRefused, match=MALFORMED_HOSTS[url]) as caught:
            await fetcher.fetch(url)
    assert caught.value.code.name == "MEDIA_URL_FORBIDDEN"
    assert resolver.calls == []
    assert connects == []


@pytest.mark.parametrize("url", ["http:x", "http:\\\\127.0.0.1\\x", "http:///x.png"])
async def test_url_without_a_host_is_refused(url: str, connects: Connects) -> None:
    async with SafeFetcher(POLICY, resolver=RecordingResolver()) as fetcher:
        with pytest.raises(FetchRefused, match="empty host"):
            await fetcher.fetch(url)
    assert connects == []


BAD_LOCATIONS = {
    "ftp:x": "scheme 'ftp' of ftp:x is not allowed",
    "http://xn--/": "not a valid IDNA",
    "http://xn--a.com/": "not a valid IDNA",
    "http://xn--zz/": "not a valid IDNA",
    "http://a..b/": "empty label",
    f"http://{LONG_LABEL}/": "longer than 63",
    "http://[::1": "invalid URL",
}


@pytest.mark.parametrize("location", sorted(BAD_LOCATIONS))
async def test_malformed_redirect_location_is_refused_after_one_request(
    location: str, servers: Servers, connects: Connects
) -> None:
    servers.legit.routes["/go"] = Reply(302, headers=(("Location", location),))
    async with SafeFetcher(POLICY, resolver=RecordingResolver()) as fetcher:
        with pytest.raises(FetchRefused, match=BAD_LOCATIONS[location]) as caught:
            await fetcher.fetch(f"{servers.base}/go")
    assert caught.value.code.name == "MEDIA_URL_FORBIDDEN"
    assert "/go" in caught.value.detail
    assert [seen.path for seen in servers.legit.requests] == ["/go"]
    assert connects == [("127.0.0.2", servers.port)]


@pytest.mark.parametrize(
    ("location", "followed"), [("http:x", "/x"), ("http:\\\\127.0.0.1\\x", "/\\\\127.0.0.1\\x")]
)
async def test_scheme_relative_location_is_a_path_on_the_same_checked_host(
    location: str, followed: str, servers: Servers, connects: Connects
) -> None:
    """``http:x`` with no ``//`` names no host: like urllib (RFC 3986 5.2.2, non-strict) the
    fetcher reads it as a path relative to the current URL, so it never leaves the host it
    already checked (the tripwire on 127.0.0.1 stays untouched)."""
    servers.legit.routes["/go"] = Reply(302, headers=(("Location", location),))
    async with SafeFetcher(POLICY, resolver=RecordingResolver()) as fetcher:
        with pytest.raises(FetchFailed, match="answered HTTP 404"):
            await fetcher.fetch(f"{servers.base}/go")
    assert [seen.path for seen in servers.legit.requests] == ["/go", followed]
    assert connects == [("127.0.0.2", servers.port)] * 2


async def test_redirect_with_an_unusable_location_header_fails_precisely(
    servers: Servers,
) -> None:
    servers.legit.routes["/go"] = Reply(302, headers=(("Location", "http://\u2603.net/"),))
    async with SafeFetcher(POLICY, resolver=LoopbackResolver()) as fetcher:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"{servers.base}/go")
    assert not isinstance(caught.value, FetchUnexpected), caught.value.detail
    assert "/go" in caught.value.detail


# --- properties: arbitrary input only ever raises a FetchError ---------------------------

URL_CHARS = string.ascii_letters + string.digits + ".-_:/\\@[]%?#~ \t" + "é☃\u200b\x00\x7f"
# fmt: off
URL_PIECES = [
    "http", "https", "HTTP", "ftp", "://", ":", ":/", ":\\\\", "//", "xn--", "..", ".", "[", "]",
    "::1", "127.0.0.2", "@", "%2e", "%00", ":0", ":65536", ":80", "é", "/", "\\", "?", "#",
    "a" * 64,
]
# fmt: on
url_like = st.builds(
    "".join,
    st.lists(st.sampled_from(URL_PIECES) | st.text(URL_CHARS, max_size=8), max_size=12),
)
PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
async def loopback_fetcher() -> AsyncIterator[SafeFetcher]:
    """One fetcher for all examples of a property (building its TLS context is the slow part)."""
    policy = FetchPolicy(allow_networks=ONLY_LEGIT, timeout_seconds=3.0, max_redirects=2)
    async with SafeFetcher(policy, resolver=LoopbackResolver()) as fetcher:
        yield fetcher


async def _only_fetch_errors(fetcher: SafeFetcher, url: str) -> None:
    """``fetch`` either returns or raises a precisely mapped FetchError (pytest.raises would
    also fail the examples that legitimately succeed)."""
    error: FetchError | None = None
    try:
        await fetcher.fetch(url)
    except FetchError as exc:
        error = exc
    if error is not None:
        assert not isinstance(error, FetchUnexpected), error.detail
        assert error.detail


def examples(name: str, *values: str) -> Callable[[T], T]:
    """``@example(name=value)`` for each value: the measured cases always run."""

    def apply(test: T) -> T:
        for value in values:
            test = example(**{name: value})(test)
        return test

    return apply


@PROPERTY
@given(url=st.one_of(st.text(max_size=40), url_like))
@examples("url", "http://a..b/x.png", f"http://{LONG_LABEL}/x", "https://.com/", "//0@//")
async def test_fetch_of_any_string_raises_only_fetch_errors(
    url: str, servers: Servers, loopback_fetcher: SafeFetcher
) -> None:
    await _only_fetch_errors(loopback_fetcher, url)
    assert servers.tripwire.hits == []


header_value = st.text(st.characters(blacklist_characters="\r\n"), max_size=40)


@PROPERTY
@given(location=st.one_of(header_value, url_like.filter(lambda s: not {"\r", "\n"} & set(s))))
@examples("location", "http:\\\\127.0.0.1\\x", "http:x", "http://xn--/", "http://xn--a.com/")
async def test_any_redirect_location_raises_only_fetch_errors(
    location: str, servers: Servers, loopback_fetcher: SafeFetcher
) -> None:
    servers.legit.routes["/go"] = Reply(302, headers=(("Location", location),))
    await _only_fetch_errors(loopback_fetcher, f"{servers.base}/go")
    assert servers.tripwire.hits == []


def test_unexpected_is_a_fetch_failure() -> None:
    assert issubclass(FetchUnexpected, FetchFailed)
    assert FetchUnexpected("x").code.name == "MEDIA_FETCH_FAILED"


@pytest.mark.parametrize("url", ["//0@//", "//user:pw@//x"])
async def test_refusal_of_a_schemeless_url_with_userinfo_hides_it(url: str) -> None:
    """Found by the property test: showing such a URL without its userinfo raised InvalidURL."""
    async with SafeFetcher(POLICY, resolver=RecordingResolver()) as fetcher:
        with pytest.raises(FetchRefused, match="scheme '' of") as caught:
            await fetcher.fetch(url)
    assert "pw" not in caught.value.detail
