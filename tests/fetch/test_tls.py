"""HTTPS through a pinned IP: SNI and certificate checks use the original hostname.

A throwaway CA signs a certificate for ``media.test`` only; the server listens on 127.0.0.2.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fetch.support import HttpServer, Reply, StubResolver
from wfrun.fetch import FetchFailed, FetchPolicy, SafeFetcher

POLICY = FetchPolicy(
    allow_networks=(ipaddress.ip_network("127.0.0.2/32"),),
    timeout_seconds=3.0,
    connect_timeout_seconds=1.0,
)


@dataclass
class TlsServer:
    server: HttpServer
    port: int
    client_context: ssl.SSLContext

    def fetcher(self) -> SafeFetcher:
        table = {name: [["127.0.0.2"]] for name in ("media.test", "other.test")}
        return SafeFetcher(POLICY, resolver=StubResolver(table), ssl_context=self.client_context)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: str, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


def _certificates(directory: Path) -> tuple[Path, Path, bytes]:
    """(leaf chain file, leaf key file, CA PEM) for a leaf valid for media.test only."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        _builder("wfrun test CA", "wfrun test CA", ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    leaf = (
        _builder("media.test", "wfrun test CA", key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("media.test")]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(aki, False)
        .sign(ca_key, hashes.SHA256())
    )
    chain, key_file = directory / "leaf.pem", directory / "leaf.key"
    chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return chain, key_file, ca.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
async def tls(tmp_path: Path) -> AsyncIterator[TlsServer]:
    chain, key, ca_pem = _certificates(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(chain, key)
    server = HttpServer(routes={"/ok": Reply(body=b"secure")}, keep_alive=True)
    port = await server.start("127.0.0.2", 0, tls=server_context)
    try:
        yield TlsServer(server, port, ssl.create_default_context(cadata=ca_pem.decode()))
    finally:
        await server.stop()


async def test_https_is_pinned_with_sni_and_verification_for_the_hostname(
    tls: TlsServer, connects: list[tuple[str, int]]
) -> None:
    async with tls.fetcher() as fetcher:
        got = await fetcher.fetch(f"https://media.test:{tls.port}/ok")
    assert got.data == b"secure"
    assert got.final_url == f"https://media.test:{tls.port}/ok"
    assert tls.server.sni == ["media.test"]
    assert tls.server.requests[0].headers["host"] == f"media.test:{tls.port}"
    assert connects == [("127.0.0.2", tls.port)]


async def test_certificate_for_another_name_is_rejected(tls: TlsServer) -> None:
    async with tls.fetcher() as fetcher:
        with pytest.raises(FetchFailed, match=r"other\.test"):
            await fetcher.fetch(f"https://other.test:{tls.port}/ok")
    assert tls.server.sni == ["other.test"]
    assert tls.server.requests == []


async def test_verified_connection_is_not_reused_for_another_name_on_the_same_ip(
    tls: TlsServer,
) -> None:
    async with tls.fetcher() as fetcher:
        await fetcher.fetch(f"https://media.test:{tls.port}/ok")
        with pytest.raises(FetchFailed, match=r"other\.test"):
            await fetcher.fetch(f"https://other.test:{tls.port}/ok")
    assert len(tls.server.requests) == 1
    assert tls.server.sni == ["media.test", "other.test"]


async def test_ip_literal_https_is_verified_against_the_ip(tls: TlsServer) -> None:
    async with tls.fetcher() as fetcher:
        with pytest.raises(FetchFailed, match=r"127\.0\.0\.2"):
            await fetcher.fetch(f"https://127.0.0.2:{tls.port}/ok")
    assert tls.server.requests == []
