"""SafeFetcher against real loopback servers: refusals, pinning, rebinding, limits.

Layout (see conftest): the legit server listens on 127.0.0.2:P, which tests allow via
``allow_networks``; a tripwire listens on 127.0.0.1:P and fails the test if ever connected to.
The ``connects`` fixture records every outgoing connect and blocks non-loopback ones.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping, Sequence

import pytest

from tests.fetch.conftest import Servers
from tests.fetch.support import Reply, StubResolver, free_port
from tests.support.waiting import DEADLINE
from wfrun.fetch import (
    FetchError,
    FetchFailed,
    FetchPolicy,
    FetchRefused,
    FetchTooLarge,
    SafeFetcher,
)

ONLY_LEGIT = (ipaddress.ip_network("127.0.0.2/32"),)
POLICY = FetchPolicy(allow_networks=ONLY_LEGIT, timeout_seconds=3.0, connect_timeout_seconds=1.0)
Connects = list[tuple[str, int]]


def make(
    table: Mapping[str, Sequence[Sequence[str]]] | None = None, policy: FetchPolicy = POLICY
) -> SafeFetcher:
    """A fetcher whose resolver answers from ``table`` (host -> successive answers)."""
    return SafeFetcher(policy, resolver=StubResolver(table or {}))


def resolver_of(fetcher: SafeFetcher) -> StubResolver:
    resolver = fetcher._resolver
    assert isinstance(resolver, StubResolver)
    return resolver


# --- refusals before any connection ------------------------------------------------------

LITERAL_URLS = [
    "http://127.0.0.1:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f000001:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://0x7f.1:{port}/",
    "http://127.0.0.1.:{port}/",
    "http://0.0.0.0:{port}/",
    "http://0:{port}/",
    "http://[::1]:{port}/",
    "http://[::]:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[::ffff:7f00:1]:{port}/",
    "http://[::127.0.0.1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",
    "http://[64:ff9b::7f00:1]:{port}/",
    "http://[fe80::1%25lo]:{port}/",
    "https://127.0.0.1:{port}/",
    "http://169.254.169.254:{port}/latest/meta-data/",
    "http://2852039166:{port}/",
    "http://[fd00:ec2::254]:{port}/",
]


@pytest.mark.parametrize("template", LITERAL_URLS)
async def test_forbidden_ip_literals_are_refused_unresolved_and_unconnected(
    template: str, servers: Servers, connects: Connects
) -> None:
    async with make() as fetcher:
        with pytest.raises(FetchRefused) as caught:
            await fetcher.fetch(template.format(port=servers.port))
    assert caught.value.code.name == "MEDIA_URL_FORBIDDEN"
    assert resolver_of(fetcher).calls == []
    assert connects == []


RESOLVED = [
    ["127.0.0.1"],
    ["::1"],
    ["0.0.0.0"],
    ["::"],
    ["169.254.169.254"],
    ["100.100.100.200"],
    ["fd00:ec2::254"],
    ["10.0.0.1"],
    ["172.16.0.1"],
    ["192.168.0.1"],
    ["100.64.0.1"],
    ["224.0.0.1"],
    ["240.0.0.1"],
    ["255.255.255.255"],
    ["198.18.0.1"],
    ["192.0.2.1"],
    ["192.0.0.9"],
    ["fe80::1%lo"],
    ["ff02::1"],
    ["::ffff:127.0.0.1"],
    ["::ffff:169.254.169.254"],
    ["2002:7f00:1::"],
    ["64:ff9b::7f00:1"],
    ["2001:0:4136:e378:8000:63bf:80ff:fffe"],
    ["93.184.216.34", "127.0.0.1"],
    ["127.0.0.2", "169.254.169.254"],
]


@pytest.mark.parametrize("answer", RESOLVED, ids=lambda a: ",".join(a))
async def test_any_forbidden_resolved_address_refuses_before_connecting(
    answer: list[str], servers: Servers, connects: Connects
) -> None:
    async with make({"media.test": [answer]}) as fetcher:
        with pytest.raises(FetchRefused, match=r"media\.test") as caught:
            await fetcher.fetch(f"http://media.test:{servers.port}/ok")
    forbidden = answer[-1].split("%")[0]
    assert str(ipaddress.ip_address(forbidden)) in caught.value.detail
    assert resolver_of(fetcher).calls == [("media.test", servers.port)]
    assert connects == []


async def test_default_resolver_refuses_localhost(servers: Servers, connects: Connects) -> None:
    async with SafeFetcher(POLICY) as fetcher:
        with pytest.raises(FetchRefused, match="loopback"):
            await fetcher.fetch(f"http://localhost:{servers.port}/")
    assert connects == []


BAD_URLS = [
    "ftp://127.0.0.2/x",
    "file:///etc/passwd",
    "gopher://127.0.0.2:70/_",
    "javascript:alert(1)",
    "data:text/plain,hi",
    "http://user:secret@127.0.0.2:{port}/ok",
    "http://user@127.0.0.2:{port}/ok",
    "http://:secret@127.0.0.2:{port}/ok",
    "http://127.0.0.2\\@127.0.0.1:{port}/ok",
    "http://127.0.0.2:0/ok",
    "http://127.0.0.2:65536/ok",
    "http:///ok",
    "http://a b/",
    "http://127.0.0.1%00.media.test/",
    "http://media.test%2f@127.0.0.2:{port}/ok",
    "http://[::1/",
]


@pytest.mark.parametrize("template", BAD_URLS)
async def test_bad_urls_are_refused_before_connecting(
    template: str, servers: Servers, connects: Connects
) -> None:
    async with make() as fetcher:
        with pytest.raises(FetchRefused) as caught:
            await fetcher.fetch(template.format(port=servers.port))
    assert "secret" not in caught.value.detail
    assert connects == []


# --- allowed fetches and pinning -----------------------------------------------------------


async def test_allowed_network_fetch_sends_only_safe_headers(
    servers: Servers, connects: Connects
) -> None:
    servers.legit.routes["/ok"] = Reply(body=b"png!", headers=(("Content-Type", "Image/PNG; x=1"),))
    async with make() as fetcher:
        got = await fetcher.fetch(f"{servers.base}/ok")
    assert (got.data, got.content_type, got.final_url) == (
        b"png!",
        "image/png",
        f"{servers.base}/ok",
    )
    [seen] = servers.legit.requests
    assert seen.headers["host"] == f"127.0.0.2:{servers.port}"
    assert seen.headers["user-agent"] == "wfrun-fetcher/1"
    assert not {"cookie", "authorization", "proxy-authorization"} & seen.headers.keys()
    assert connects == [("127.0.0.2", servers.port)]


async def test_named_host_is_pinned_to_the_checked_address(
    servers: Servers, connects: Connects
) -> None:
    servers.legit.routes["/ok"] = Reply(body=b"hi")
    async with make({"media.test": [["127.0.0.2"]]}) as fetcher:
        got = await fetcher.fetch(f"http://Media.Test:{servers.port}/ok")
    assert got.data == b"hi"
    assert got.final_url == f"http://media.test:{servers.port}/ok"
    [seen] = servers.legit.requests
    assert seen.headers["host"] == f"media.test:{servers.port}"
    assert seen.local == ("127.0.0.2", servers.port)
    assert connects == [("127.0.0.2", servers.port)]


async def test_dns_rebinding_cannot_redirect_the_connection(
    servers: Servers, connects: Connects
) -> None:
    servers.legit.routes["/ok"] = Reply(body=b"legit")
    async with make({"media.test": [["127.0.0.2"], ["127.0.0.1"]]}) as fetcher:
        got = await fetcher.fetch(f"http://media.test:{servers.port}/ok")
    assert got.data == b"legit"
    assert resolver_of(fetcher).calls == [("media.test", servers.port)]
    assert servers.tripwire.hits == []
    assert connects == [("127.0.0.2", servers.port)]


async def test_allow_hosts_exempts_exactly_that_name(servers: Servers, connects: Connects) -> None:
    servers.legit.routes["/ok"] = Reply(body=b"cdn")
    policy = FetchPolicy(allow_hosts=frozenset({"cdn.internal"}), timeout_seconds=3.0)
    table = {"cdn.internal": [["127.0.0.2"]], "x.cdn.internal": [["127.0.0.2"]]}
    async with make(table, policy) as fetcher:
        assert (await fetcher.fetch(f"http://cdn.internal:{servers.port}/ok")).data == b"cdn"
        with pytest.raises(FetchRefused, match=r"x\.cdn\.internal"):
            await fetcher.fetch(f"http://x.cdn.internal:{servers.port}/ok")
    assert connects == [("127.0.0.2", servers.port)]


async def test_next_checked_address_is_tried_when_connect_fails(
    servers: Servers, connects: Connects
) -> None:
    servers.legit.routes["/ok"] = Reply(body=b"second")
    policy = FetchPolicy(allow_networks=(ipaddress.ip_network("127.0.0.2/31"),))
    async with make(policy=policy, table={"media.test": [["127.0.0.3", "127.0.0.2"]]}) as fetcher:
        got = await fetcher.fetch(f"http://media.test:{servers.port}/ok")
    assert got.data == b"second"
    assert connects == [("127.0.0.3", servers.port), ("127.0.0.2", servers.port)]


async def test_no_cookies_are_kept_between_hops_or_fetches(servers: Servers) -> None:
    cookie = (("Set-Cookie", "sid=secret; Path=/"), ("Location", "/ok"))
    servers.legit.routes["/login"] = Reply(302, headers=cookie)
    servers.legit.routes["/ok"] = Reply(body=b"x", headers=cookie[:1])
    async with make() as fetcher:
        await fetcher.fetch(f"{servers.base}/login")
        await fetcher.fetch(f"{servers.base}/ok")
    assert [seen.path for seen in servers.legit.requests] == ["/login", "/ok", "/ok"]
    assert all("cookie" not in seen.headers for seen in servers.legit.requests)


# --- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 500, 304, 418])
async def test_non_2xx_fails_with_the_status(status: int, servers: Servers) -> None:
    servers.legit.routes["/x"] = Reply(status, b"nope")
    async with make() as fetcher:
        with pytest.raises(FetchFailed, match=str(status)) as caught:
            await fetcher.fetch(f"{servers.base}/x")
    assert caught.value.code.name == "MEDIA_FETCH_FAILED"
    assert f"{servers.base}/x" in caught.value.detail


async def test_empty_2xx_body_is_fine(servers: Servers) -> None:
    servers.legit.routes["/x"] = Reply(204)
    async with make() as fetcher:
        got = await fetcher.fetch(f"{servers.base}/x")
    assert (got.data, got.content_type) == (b"", None)


async def test_connection_refused_fails() -> None:
    port = free_port("127.0.0.2")
    async with make() as fetcher:
        with pytest.raises(FetchFailed, match=r"127\.0\.0\.2"):
            await fetcher.fetch(f"http://127.0.0.2:{port}/")


@pytest.mark.parametrize("answers", [[], [["not-an-ip"]], [[]]])
async def test_resolution_failures_fail(answers: list[list[str]], connects: Connects) -> None:
    async with make({"media.test": answers}) as fetcher:
        with pytest.raises(FetchFailed, match=r"media\.test"):
            await fetcher.fetch("http://media.test/")
    assert connects == []


@pytest.mark.parametrize("mode", ["stall", "drip"])
async def test_whole_fetch_is_bounded_by_timeout(mode: str, servers: Servers) -> None:
    servers.legit.routes["/slow"] = Reply(mode=mode)  # type: ignore[arg-type]
    policy = FetchPolicy(allow_networks=ONLY_LEGIT, timeout_seconds=0.5)
    async with make(policy=policy) as fetcher:
        with pytest.raises(FetchFailed, match="slow"):
            # the reply never ends (a drip keeps every read short): only the whole-fetch
            # bound ends it, long before this test's deadline
            await asyncio.wait_for(fetcher.fetch(f"{servers.base}/slow"), DEADLINE)


SMALL = FetchPolicy(allow_networks=ONLY_LEGIT, max_bytes=1000, timeout_seconds=3.0)


@pytest.mark.parametrize("mode", ["fixed", "chunked"])
async def test_body_at_the_limit_is_accepted(mode: str, servers: Servers) -> None:
    servers.legit.routes["/x"] = Reply(body=b"a" * 1000, mode=mode)  # type: ignore[arg-type]
    async with make(policy=SMALL) as fetcher:
        assert len((await fetcher.fetch(f"{servers.base}/x")).data) == 1000


@pytest.mark.parametrize("mode", ["fixed", "chunked", "endless"])
async def test_body_over_the_limit_is_too_large(mode: str, servers: Servers) -> None:
    servers.legit.routes["/x"] = Reply(body=b"a" * 1001, mode=mode)  # type: ignore[arg-type]
    async with make(policy=SMALL) as fetcher:
        with pytest.raises(FetchTooLarge, match="1000") as caught:
            await fetcher.fetch(f"{servers.base}/x")
    assert caught.value.code.name == "MEDIA_TOO_LARGE"


async def test_declared_length_is_refused_without_reading(servers: Servers) -> None:
    huge = (("Content-Length", str(10**10)),)
    servers.legit.routes["/x"] = Reply(headers=huge, mode="head-only")  # body never comes
    async with make(policy=SMALL) as fetcher:
        with pytest.raises(FetchTooLarge, match=str(10**10)):  # reading would time out instead
            await fetcher.fetch(f"{servers.base}/x")


def test_error_codes_and_hierarchy() -> None:
    errors = [FetchRefused("r"), FetchTooLarge("t"), FetchFailed("f")]
    assert [e.code.name for e in errors] == [
        "MEDIA_URL_FORBIDDEN",
        "MEDIA_TOO_LARGE",
        "MEDIA_FETCH_FAILED",
    ]
    assert all(isinstance(e, FetchError) and e.detail == str(e) for e in errors)
