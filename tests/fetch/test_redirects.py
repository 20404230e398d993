"""Redirects are followed by hand: every hop is re-validated, re-resolved and re-pinned."""

from __future__ import annotations

import ipaddress

import pytest

from tests.fetch.conftest import Servers
from tests.fetch.support import Reply, StubResolver
from wfrun.fetch import FetchFailed, FetchPolicy, FetchRefused, SafeFetcher

ONLY_LEGIT = (ipaddress.ip_network("127.0.0.2/32"),)
Connects = list[tuple[str, int]]


def make(max_redirects: int = 5, table: dict[str, list[list[str]]] | None = None) -> SafeFetcher:
    policy = FetchPolicy(
        allow_networks=ONLY_LEGIT,
        allow_hosts=frozenset({"cdn.internal"}),
        max_redirects=max_redirects,
        timeout_seconds=3.0,
    )
    return SafeFetcher(policy, resolver=StubResolver(table or {}))


FORBIDDEN_TARGETS = [
    "http://127.0.0.1:{port}/",
    "http://2130706433:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/",
    "http://rebind.test:{port}/",
    "file:///etc/passwd",
    "gopher://127.0.0.2:{port}/",
    "http://user:pw@127.0.0.2:{port}/ok",
    "http://127.0.0.2:0/",
]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("template", FORBIDDEN_TARGETS)
async def test_redirect_to_forbidden_target_is_refused_before_connecting_to_it(
    template: str, status: int, servers: Servers, connects: Connects
) -> None:
    location = template.format(port=servers.port)
    servers.legit.routes["/go"] = Reply(status, headers=(("Location", location),))
    async with make(table={"rebind.test": [["127.0.0.1"]]}) as fetcher:
        with pytest.raises(FetchRefused) as caught:
            await fetcher.fetch(f"{servers.base}/go")
    assert caught.value.code.name == "MEDIA_URL_FORBIDDEN"
    assert "pw" not in caught.value.detail
    assert [seen.path for seen in servers.legit.requests] == ["/go"]
    assert connects == [("127.0.0.2", servers.port)]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("location", ["ok", "/ok", "./sub/../ok", "//127.0.0.2:{port}/ok"])
async def test_relative_redirects_on_the_allowed_host_succeed(
    location: str, status: int, servers: Servers
) -> None:
    servers.legit.routes["/go"] = Reply(
        status, headers=(("Location", location.format(port=servers.port)),)
    )
    servers.legit.routes["/ok"] = Reply(body=b"final")
    async with make() as fetcher:
        got = await fetcher.fetch(f"{servers.base}/go")
    assert (got.data, got.final_url) == (b"final", f"{servers.base}/ok")


async def test_each_hop_is_resolved_once_and_pinned_with_its_own_host(
    servers: Servers, connects: Connects
) -> None:
    target = f"http://cdn.internal:{servers.port}/ok?x=1"
    servers.legit.routes["/go"] = Reply(302, headers=(("Location", target),))
    servers.legit.routes["/ok?x=1"] = Reply(body=b"cdn")
    table = {"media.test": [["127.0.0.2"], ["127.0.0.1"]], "cdn.internal": [["127.0.0.2"]]}
    async with make(table=table) as fetcher:
        got = await fetcher.fetch(f"http://media.test:{servers.port}/go")
    assert (got.data, got.final_url) == (b"cdn", target)
    resolver = fetcher._resolver
    assert isinstance(resolver, StubResolver)
    assert resolver.calls == [("media.test", servers.port), ("cdn.internal", servers.port)]
    hosts = [seen.headers["host"] for seen in servers.legit.requests]
    assert hosts == [f"media.test:{servers.port}", f"cdn.internal:{servers.port}"]
    assert connects == [("127.0.0.2", servers.port)] * 2


def _chain(servers: Servers, length: int) -> None:
    for n in range(1, length + 1):
        servers.legit.routes[f"/chain/{n}"] = Reply(302, headers=(("Location", f"{n - 1}"),))
    servers.legit.routes["/chain/0"] = Reply(body=b"end")


async def test_exactly_max_redirects_are_followed(servers: Servers) -> None:
    _chain(servers, 3)
    async with make(max_redirects=3) as fetcher:
        got = await fetcher.fetch(f"{servers.base}/chain/3")
    assert (got.data, got.final_url) == (b"end", f"{servers.base}/chain/0")


async def test_one_redirect_too_many_fails(servers: Servers) -> None:
    _chain(servers, 4)
    async with make(max_redirects=3) as fetcher:
        with pytest.raises(FetchFailed, match="more than 3"):
            await fetcher.fetch(f"{servers.base}/chain/4")
    assert [seen.path for seen in servers.legit.requests] == [f"/chain/{n}" for n in (4, 3, 2, 1)]


async def test_redirect_loop_fails(servers: Servers) -> None:
    servers.legit.routes["/loop"] = Reply(302, headers=(("Location", "/loop"),))
    async with make(max_redirects=2) as fetcher:
        with pytest.raises(FetchFailed, match="redirected more than 2"):
            await fetcher.fetch(f"{servers.base}/loop")


async def test_zero_redirects_allowed_means_none_followed(servers: Servers) -> None:
    servers.legit.routes["/go"] = Reply(302, headers=(("Location", "/ok"),))
    async with make(max_redirects=0) as fetcher:
        with pytest.raises(FetchFailed):
            await fetcher.fetch(f"{servers.base}/go")
    assert len(servers.legit.requests) == 1


async def test_redirect_without_location_fails(servers: Servers) -> None:
    servers.legit.routes["/go"] = Reply(302)
    async with make() as fetcher:
        with pytest.raises(FetchFailed, match="Location"):
            await fetcher.fetch(f"{servers.base}/go")


@pytest.mark.parametrize("location", ["http://[::1", "http://127.0.0.2:99999/", "http://a b/"])
async def test_unusable_location_fails_without_a_second_connection(
    location: str, servers: Servers, connects: Connects
) -> None:
    servers.legit.routes["/go"] = Reply(302, headers=(("Location", location),))
    async with make() as fetcher:
        with pytest.raises((FetchFailed, FetchRefused)):
            await fetcher.fetch(f"{servers.base}/go")
    assert connects == [("127.0.0.2", servers.port)]
