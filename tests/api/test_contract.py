"""The OpenAPI document is a contract: it validates, every operation declares its success model
and the error envelope under the statuses the app really answers, the bearer scheme and servers
are there, and every response of the suite's live servers is checked against it
(``tests/support/contract.py``); these tests prove that check bites."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.contract import Answer, ContractRecorder
from tests.support.factories import customer
from tests.support.server import LiveServer
from wfrun.api.app import create_app

ENVELOPE_REF = "#/components/schemas/ErrorEnvelope"
API = "/api/open/v2"


@pytest.fixture
async def document(http) -> dict[str, Any]:
    found: dict[str, Any] = (await http.get("/openapi.json")).json()
    return found


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


async def test_the_document_validates_and_has_security_and_servers(document):
    validate(document)  # openapi-spec-validator: raises on an invalid document
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert document["servers"][0]["url"] == "/"
    secured = {(p, m) for p, m, op in _operations(document) if op["security"]}
    assert (f"{API}/workflow/run/submit", "post") in secured
    assert (f"{API}/balance/info", "get") in secured
    assert ("/files/{key}", "get") not in secured  # signed links need no key
    for path, method, operation in _operations(document):
        if (path, method) in secured:
            assert operation["security"] == [{"bearerAuth": []}]
            assert "401" in operation["responses"], path


async def test_no_fastapi_422_and_errors_use_the_envelope(document):
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    with_422 = set()
    for path, _method, operation in _operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ENVELOPE_REF}, (path, status)
        for status in ("400", "413", "500"):
            assert status in operation["responses"], (path, status)
        if "422" in operation["responses"]:
            with_422.add(path)
    # 422 is only the reuse of an idempotency key with another request
    assert with_422 == {f"{API}/workflow/run/submit", f"{API}/model-runs/videos"}
    error = schemas["ErrorBody"]
    assert set(error["required"]) == {"reason", "detail", "engine_code", "status_code"}


async def test_every_success_is_a_described_model(document):
    schemas = document["components"]["schemas"]
    for path, method, operation in _operations(document):
        ok = operation["responses"].get("200") or operation["responses"]["307"]
        json_body = ok.get("content", {}).get("application/json")
        if json_body is not None:
            ref = json_body["schema"]["$ref"]  # a named model, not a free-form object
            assert schemas[ref.rsplit("/", 1)[1]]["additionalProperties"] is False, path
        for parameter in operation.get("parameters", []):
            assert parameter.get("description"), (path, method, parameter["name"])
    for name, schema in schemas.items():
        for field, prop in schema.get("properties", {}).items():
            described = prop.get("description") or "$ref" in prop
            assert described, f"{name}.{field} has no description"


async def test_idempotency_key_is_required_and_amounts_are_strings(document):
    schemas = document["components"]["schemas"]
    assert "idempotency_key" in schemas["SubmitBody"]["required"]
    assert "idempotency_key" in schemas["VideoBody"]["required"]
    assert schemas["SubmitBody"]["properties"]["idempotency_key"]["type"] == "string"
    quote = schemas["SubmitData"]["properties"]["quote_amount"]
    assert quote["type"] == "string"
    assert quote["examples"] == ["1.20000000"]


async def test_wrong_methods_answer_405_with_allow(http):
    for method, path, allow in [
        ("DELETE", "/workflow/run/submit", "POST"),
        ("POST", "/balance/info", "GET"),
        ("PUT", "/assets", "POST"),
        ("POST", "/docs", "GET"),
        ("POST", "/redoc", "GET"),
    ]:
        answer = await http.request(method, path)
        assert answer.status_code == 405, path
        assert answer.headers["allow"] == allow, path
        assert answer.json()["data"]["error"]["engine_code"] == "METHOD_NOT_ALLOWED"


async def test_the_recorder_checks_the_suites_answers(runtime, server: LiveServer, http):
    alice = await customer(runtime, balance="10")
    checked = server.contract.checked if server.contract else 0
    assert (await http.get("/balance/info", headers=alice.headers)).status_code == 200
    assert (await http.get("/balance/info")).status_code == 401
    assert server.contract is not None
    assert server.contract.checked == checked + 2
    assert server.contract.problems == []


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (Answer("GET", f"{API}/balance/info", 402), "status 402 is not documented"),
        (
            Answer(
                "GET",
                f"{API}/balance/info",
                200,
                {"content-type": "application/json"},
                bytearray(b'{"code": 0, "msg": "ok", "data": {"balance": "1"}}'),
            ),
            "body does not match the document",
        ),
        (
            Answer(
                "GET",
                f"{API}/balance/info",
                401,
                {"content-type": "application/json"},
                bytearray(b'{"code": 1, "msg": "x", "data": {}}'),
            ),
            "body does not match the document",
        ),
        (Answer("GET", f"{API}/balance/info", 200, {"content-type": "text/html"}), "media type"),
        (
            Answer(
                "DELETE",
                f"{API}/balance/info",
                405,
                {"content-type": "application/json"},
                bytearray(
                    b'{"code": 1, "msg": "m", "data": {"error": {"reason": "m", '
                    b'"detail": "d", "engine_code": "METHOD_NOT_ALLOWED", '
                    b'"status_code": 405}}}'
                ),
            ),
            "405 without Allow",
        ),
        (Answer("GET", "/nowhere", 200), "expected 404 outside the document"),
    ],
)
async def test_the_recorder_reports_answers_off_the_document(runtime, answer, problem):
    recorder = ContractRecorder(create_app(runtime.settings, runtime=runtime))
    recorder.check(answer)
    assert len(recorder.problems) == 1
    assert problem in recorder.problems[0]
