"""A loopback HTTP/1.1 proxy in front of the live app that misbehaves on request: it can
forward a request and then drop the connection without answering (the answer is lost after
the server acted), or answer 503/429 with ``Retry-After`` without forwarding. It records
every request line it saw, so a test counts attempts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding"}


@dataclass
class Rule:
    path: str
    action: str  # "drop" (forward, then close unanswered) or "busy" (answer 503/429 at once)
    times: int
    status: int = 503
    retry_after: str = "0"


@dataclass
class Proxy:
    upstream: str
    port: int = 0
    seen: list[str] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def drop(self, path: str, times: int = 1) -> None:
        self.rules.append(Rule(path, "drop", times))

    def busy(self, path: str, times: int = 1, status: int = 503, retry_after: str = "0") -> None:
        self.rules.append(Rule(path, "busy", times, status, retry_after))

    def attempts(self, path: str) -> int:
        return sum(1 for line in self.seen if line.split(" ")[1].split("?")[0].endswith(path))

    def _rule(self, target: str) -> Rule | None:
        for rule in self.rules:
            if rule.times > 0 and target.split("?")[0].endswith(rule.path):
                rule.times -= 1
                return rule
        return None


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for text in lines:
        if ":" in text:
            name, value = text.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return line, headers, body


def _response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status)}"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _busy(rule: Rule) -> bytes:
    body = (
        b'{"code":1,"msg":"busy","data":{"error":{"reason":"busy","detail":"the proxy says so",'
        b'"engine_code":"SERVICE_UNAVAILABLE","status_code":%d}}}' % rule.status
    )
    headers = [("content-type", "application/json"), ("retry-after", rule.retry_after)]
    return _response(rule.status, headers, body)


async def _serve(proxy: Proxy, upstream: httpx.AsyncClient, reader, writer) -> None:
    try:
        while (request := await _read_request(reader)) is not None:
            line, headers, body = request
            proxy.seen.append(line)
            method, target, _ = line.split(" ", 2)
            rule = proxy._rule(target)
            if rule is not None and rule.action == "busy":
                writer.write(_busy(rule))
                await writer.drain()
                continue
            sent = {k: v for k, v in headers.items() if k not in HOP_BY_HOP}
            got = await upstream.request(method, target, headers=sent, content=body)
            if rule is not None:  # "drop": the server acted; its answer never arrives
                return
            writer.write(_response(got.status_code, list(got.headers.multi_items()), got.content))
            await writer.drain()
    finally:
        writer.close()


@asynccontextmanager
async def proxy_to(upstream_url: str) -> AsyncIterator[Proxy]:
    proxy = Proxy(upstream_url)
    async with httpx.AsyncClient(base_url=upstream_url, timeout=30) as upstream:
        server = await asyncio.start_server(
            lambda r, w: _serve(proxy, upstream, r, w), "127.0.0.1", 0
        )
        proxy.port = server.sockets[0].getsockname()[1]
        try:
            yield proxy
        finally:
            server.close()
            await server.wait_closed()
