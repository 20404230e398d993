"""Every response the test suite's live servers give is checked against the app's own OpenAPI
document, so the contract cannot drift from the code.

:class:`ContractRecorder` wraps the app served by :func:`tests.support.server.start_server`
(every API test's ``server``/``http`` fixtures, the SDK and CLI tests, the chaos tests). For each
answer it finds the operation (method + path template), and reports a problem when the status
is not documented for it, the media type is not, or a JSON body does not validate against the
documented schema. Unknown paths and wrong methods must answer the error envelope (a 405 with
``Allow``). ``start_server`` fails the test on any problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NOT_API = ("/api/open/v2/openapi.json", "/api/open/v2/docs", "/api/open/v2/redoc")
"""Served but deliberately not operations of the document (the document and its viewer)."""
ASSETS_PREFIX = "/api/open/v2/docs-assets/"
MAX_BODY = 4 * 1024 * 1024
ENVELOPE = {"$ref": "#/components/schemas/ErrorEnvelope"}


@dataclass
class Answer:
    method: str
    path: str
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)

    @property
    def media_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip()

    def describe(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


class ContractRecorder:
    """ASGI middleware: passes everything through, checks each finished answer."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.problems: list[str] = []
        self.checked = 0
        self._validators: dict[str, Draft202012Validator] = {}

    @cached_property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = self.app.openapi()
        return document

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str]]:
        exact, spanning = [], []
        for path in self.document["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path))
            exact.append((re.compile(pattern + "$"), path))
            # a last {key:path} parameter (GET /files/{key}) may span slashes
            spanning.append((re.compile(re.sub(r"\[\^/\]\+$", ".+", pattern) + "$"), path))
        return exact + spanning

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answer = Answer(scope["method"], scope["path"])

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                }
            elif message["type"] == "http.response.body":
                if answer.media_type == "application/json" and len(answer.body) < MAX_BODY:
                    answer.body += message.get("body", b"")
                if not message.get("more_body", False):
                    self.check(answer)
            await send(message)

        await self.app(scope, receive, capture)

    def check(self, answer: Answer) -> None:
        self.checked += 1
        problem = self._problem(answer)
        if problem is not None:
            self.problems.append(f"{answer.describe()}: {problem}")

    def _problem(self, answer: Answer) -> str | None:
        if answer.path in NOT_API or answer.path.startswith(ASSETS_PREFIX):
            return None
        template = self._template(answer.path)
        if template is None:
            return self._envelope_problem(answer, 404)
        operations = self.document["paths"][template]
        operation = operations.get(answer.method.lower())
        if operation is None:
            if answer.method == "HEAD" and "get" in operations:
                return None
            return self._envelope_problem(answer, 405) or self._allow_problem(answer)
        return self._operation_problem(answer, operation)

    def _template(self, path: str) -> str | None:
        for pattern, template in self._templates:
            if pattern.match(path):
                return template
        return None

    def _operation_problem(self, answer: Answer, operation: dict[str, Any]) -> str | None:
        response = operation["responses"].get(str(answer.status))
        if response is None:
            return f"status {answer.status} is not documented for this operation"
        content: dict[str, Any] = response.get("content", {})
        if not content:
            return None if not answer.body else "a body where the document declares none"
        media = _documented_media(content, answer.media_type)
        if media is None:
            return f"media type {answer.media_type!r} is not documented ({sorted(content)})"
        if answer.media_type != "application/json":
            return None
        return self._schema_problem(answer, content[media].get("schema", {}))

    def _envelope_problem(self, answer: Answer, status: int) -> str | None:
        if answer.status != status:
            return f"expected {status} outside the document"
        return self._schema_problem(answer, ENVELOPE)

    def _allow_problem(self, answer: Answer) -> str | None:
        return None if answer.headers.get("allow") else "405 without Allow"

    def _schema_problem(self, answer: Answer, schema: dict[str, Any]) -> str | None:
        try:
            body = json.loads(answer.body)
        except ValueError:
            return f"not JSON: {bytes(answer.body[:200])!r}"
        error = best_match(self._validator(schema).iter_errors(body))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        return f"body does not match the document at /{where}: {error.message[:300]}"

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            rooted = {**schema, "components": self.document["components"]}
            self._validators[key] = Draft202012Validator(rooted)
        return self._validators[key]


def _documented_media(content: dict[str, Any], media_type: str) -> str | None:
    if media_type in content:
        return media_type
    major = media_type.split("/")[0]
    for candidate in (f"{major}/*", "*/*"):
        if candidate in content:
            return candidate
    return None
