"""Webhook sends obey the fetcher's address policy: names are resolved and every address
checked before connecting, the connection is pinned, and redirects are never followed."""

from __future__ import annotations

import ipaddress

import pytest

from tests.fetch.conftest import LEGIT_HOST, Servers
from tests.fetch.support import Reply, StubResolver
from wfrun.fetch import FetchPolicy, FetchRefused
from wfrun.fetch.sender import SafeSender, check_url

ONLY_LEGIT = (ipaddress.ip_network("127.0.0.2/32"),)
Connects = list[tuple[str, int]]
HEADERS = {"webhook-id": "msg_1", "content-type": "application/json"}


def make(table: dict[str, list[list[str]]] | None = None) -> SafeSender:
    policy = FetchPolicy(allow_networks=ONLY_LEGIT, timeout_seconds=3.0, max_redirects=0)
    return SafeSender(policy, resolver=StubResolver(table or {}))


async def test_a_name_resolving_to_a_forbidden_address_is_refused_before_connecting(
    servers: Servers, connects: Connects
) -> None:
    async with make({"rebind.test": [["127.0.0.1"]]}) as sender:
        sent = await sender.post(f"http://rebind.test:{servers.port}/hook", b"{}", HEADERS, 1024)
    assert sent.status_code is None
    assert not sent.ok
    assert sent.error is not None
    assert "127.0.0.1 is loopback" in sent.error
    assert connects == []


async def test_a_name_is_pinned_to_its_checked_address(servers: Servers) -> None:
    servers.legit.routes["/hook"] = Reply(200, b"thanks")
    async with make({"hooks.test": [[LEGIT_HOST]]}) as sender:
        sent = await sender.post(f"http://hooks.test:{servers.port}/hook", b"{}", HEADERS, 3)
    assert (sent.status_code, sent.body, sent.error) == (200, b"tha", None)
    [seen] = servers.legit.requests
    assert seen.headers["host"] == f"hooks.test:{servers.port}"
    assert seen.headers["webhook-id"] == "msg_1"


async def test_a_redirect_is_an_unsuccessful_attempt_not_followed(servers: Servers) -> None:
    target = f"{servers.base}/elsewhere"
    servers.legit.routes["/hook"] = Reply(302, headers=(("location", target),))
    async with make() as sender:
        sent = await sender.post(f"{servers.base}/hook", b"{}", HEADERS, 1024)
    assert sent.status_code == 302
    assert not sent.ok
    assert [seen.path for seen in servers.legit.requests] == ["/hook"]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/hook",
        "http://127.0.0.1/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest",
        "http://2130706433/",
        "http://localhost:8000/hook",
        "http://printer.local/hook",
        "http://db.internal/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
    ],
)
def test_check_url_refuses_without_any_lookup(url: str) -> None:
    with pytest.raises(FetchRefused):
        check_url(url, FetchPolicy(allow_networks=ONLY_LEGIT))


def test_check_url_allows_public_names_and_allow_listed_addresses() -> None:
    policy = FetchPolicy(allow_networks=ONLY_LEGIT, allow_hosts=frozenset({"localhost"}))
    check_url("https://hooks.example.com/wfrun", policy)
    check_url("http://127.0.0.2:9000/hook", policy)
    check_url("http://localhost:9000/hook", policy)
