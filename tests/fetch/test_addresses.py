"""Pure checks: check_address, parse_host_literal, FetchPolicy (no network at all)."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wfrun.fetch import FetchPolicy, check_address, parse_host_literal

CLOSED = FetchPolicy()

FORBIDDEN = [
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("0.0.0.0", "this network"),
    ("0.1.2.3", "this network"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("169.254.0.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.100.100.200", "carrier-grade NAT"),
    ("192.0.0.8", "IETF"),
    ("192.0.0.9", "IETF"),  # is_global says True on some Pythons
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.255", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("fd00:ec2::254", "unique-local"),
    ("fc00::1", "unique-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("100::1", "discard"),
    ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "IPv4-mapped"),
    ("::ffff:10.0.0.1", "IPv4-mapped"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),
    ("2002:7f00:1::", "6to4"),
    ("2002:a9fe:a9fe::1", "6to4"),
    ("64:ff9b::7f00:1", "NAT64"),
    ("64:ff9b::a9fe:a9fe", "NAT64"),
    ("64:ff9b:1::1", "local-use NAT64"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo"),  # client 127.0.0.1
    ("2001:2::1", "IETF"),  # IPv6 benchmarking
    ("4000::1", "global unicast"),
]

ALLOWED = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700::1",
    "2001:4860:4860::8888",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",
    "2002:5db8:d822::1",
]


@pytest.mark.parametrize(("address", "fragment"), FORBIDDEN)
def test_forbidden_addresses_have_a_precise_reason(address: str, fragment: str) -> None:
    reason = check_address(ipaddress.ip_address(address), CLOSED)
    assert reason is not None
    assert fragment in reason
    assert reason.startswith(str(ipaddress.ip_address(address.split("%")[0])))


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert check_address(ipaddress.ip_address(address), CLOSED) is None


def test_reason_names_the_address_and_class() -> None:
    reason = check_address(ipaddress.ip_address("127.0.0.1"), CLOSED)
    assert reason is not None
    assert reason.startswith("127.0.0.1 is loopback")


def test_allow_networks_exempt_exactly_their_addresses() -> None:
    policy = FetchPolicy(allow_networks=(ipaddress.ip_network("127.0.0.2/32"),))
    assert check_address(ipaddress.ip_address("127.0.0.2"), policy) is None
    assert check_address(ipaddress.ip_address("::ffff:127.0.0.2"), policy) is None
    assert check_address(ipaddress.ip_address("127.0.0.1"), policy) is not None
    assert check_address(ipaddress.ip_address("::1"), policy) is not None


def test_ipv6_network_does_not_exempt_ipv4() -> None:
    policy = FetchPolicy(allow_networks=(ipaddress.ip_network("::/0"),))
    assert check_address(ipaddress.ip_address("10.0.0.1"), policy) is not None
    assert check_address(ipaddress.ip_address("fd00::1"), policy) is None


LITERALS = [
    ("127.0.0.1", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0X7F000001", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("0177.0000.0.01", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("127.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0x7f.0.0.0x1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("0x0", "0.0.0.0"),
    ("4294967295", "255.255.255.255"),
    ("169.16689662", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),
    ("[::1]", "::1"),
    ("::1", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
    ("[fe80::1%25eth0]", "fe80::1"),
    ("fe80::1%eth0", "fe80::1"),
    ("[fd00:ec2::254]", "fd00:ec2::254"),
]

NOT_LITERALS = [
    "example.com",
    "localhost",
    "1.2.3.4.5",
    "4294967296",
    "08",
    "0x",
    "1..2",
    ".1",
    "256.0.0.1",
    "1.2.65536",
    "1e3",
    "[example.com]",
    "[::g]",
    "",
]


@pytest.mark.parametrize(("host", "expected"), LITERALS)
def test_parse_host_literal_recognises_every_spelling(host: str, expected: str) -> None:
    assert parse_host_literal(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", NOT_LITERALS)
def test_parse_host_literal_rejects_names(host: str) -> None:
    assert parse_host_literal(host) is None


@given(st.text(alphabet="0123456789abcdefxX.", min_size=1, max_size=24))
def test_parse_host_literal_agrees_with_inet_aton(text: str) -> None:
    try:
        expected: ipaddress.IPv4Address | None = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        expected = None
    if not text.endswith("."):  # we also accept one trailing dot, as URL parsers do
        assert parse_host_literal(text) == expected


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ipv4_spelling_parses_to_the_same_address(number: int) -> None:
    address = ipaddress.IPv4Address(number)
    octets = [int(part) for part in str(address).split(".")]
    spellings = [str(address), str(number), hex(number), ".".join(f"0{o:o}" for o in octets)]
    spellings.append(f"{octets[0]}.{number & 0xFFFFFF}")
    for spelling in spellings:
        assert parse_host_literal(spelling) == address, spelling


FORBIDDEN_V4_NETS = ["127.0.0.0/8", "10.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "0.0.0.0/8"]


@given(st.sampled_from(FORBIDDEN_V4_NETS).flatmap(lambda n: st.ip_addresses(network=n)))
def test_forbidden_ipv4_stays_forbidden_in_every_ipv6_embedding(
    inner: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert isinstance(inner, ipaddress.IPv4Address)
    value = int(inner)
    embeddings = [
        ipaddress.IPv6Address(0xFFFF << 32 | value),  # IPv4-mapped
        ipaddress.IPv6Address(0x64FF9B << 96 | value),  # NAT64
        ipaddress.IPv6Address(0x2002 << 112 | value << 80),  # 6to4
        ipaddress.IPv6Address(value),  # IPv4-compatible
    ]
    assert check_address(inner, CLOSED) is not None
    for address in embeddings:
        assert check_address(address, CLOSED) is not None, address


def test_policy_defaults_are_closed_and_validated() -> None:
    assert CLOSED.allow_hosts == frozenset()
    assert CLOSED.allow_networks == ()
    assert FetchPolicy(allow_hosts=frozenset({"CDN.Example"})).allow_hosts == {"cdn.example"}
    with pytest.raises(ValueError, match="negative"):
        FetchPolicy(max_bytes=-1)
    with pytest.raises(ValueError, match="positive"):
        FetchPolicy(timeout_seconds=0)
