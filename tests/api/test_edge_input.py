"""Text the API cannot carry is a precise 400 that names the field, on every route and both
databases: NUL (PostgreSQL stores none), unpaired surrogates (no UTF-8 encoder takes them),
non-finite numbers; signatures that are not ASCII are a 403; ``ttl_hours`` takes ASCII digits.

Bodies are sent as raw JSON text (``json.dumps`` escapes ``\\ud800`` and ``\\u0000`` the way a
client would): httpx's own encoder cannot encode a lone surrogate.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.factories import (
    Customer,
    customer,
    data_uri,
    money_snapshot,
    operator,
    png_bytes,
    publish_demo,
)
from wfrun.api.errors import envelope
from wfrun.runtime import Runtime


async def post_json(
    http: httpx.AsyncClient, path: str, body: Any, who: Customer | None = None
) -> httpx.Response:
    headers = {"content-type": "application/json", **(who.headers if who else {})}
    return await http.post(path, content=json.dumps(body), headers=headers)


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    assert response.status_code < 500, response.text
    error = response.json()["data"]["error"]
    assert error["status_code"] == response.status_code
    return response.status_code, error["engine_code"], error["detail"]


async def _setup(runtime: Runtime) -> tuple[Customer, str]:
    owner = await operator(runtime)
    published = await publish_demo(runtime, owner)
    return await customer(runtime), published.workflow_id


def _submit(workflow_id: str, **inputs: Any) -> dict[str, Any]:
    return {
        "workflow_id": workflow_id,
        "idempotency_key": "edge",
        "inputs": {"n1_image": data_uri(png_bytes()), **inputs},
    }


SURROGATE = "\ud800"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (
            {"n6_value": f"a{SURROGATE}b"},
            "inputs.n6_value: contains an unpaired surrogate (U+D800)",
        ),
        ({SURROGATE: "x"}, "inputs: a key contains an unpaired surrogate (U+D800)"),
        (
            {"n1_image": f"https://example.com/{SURROGATE}.png"},
            "inputs.n1_image: contains an unpaired surrogate (U+D800)",
        ),
        ({"n6_value": "a\x00b"}, "inputs.n6_value: contains a NUL character"),
        (
            {"n6_value": ["ok", "\udfff"]},
            "inputs.n6_value[1]: contains an unpaired surrogate (U+DFFF)",
        ),
    ],
    ids=["surrogate-value", "surrogate-key", "surrogate-url", "nul-text", "nested"],
)
async def test_bad_text_in_inputs_is_a_400_naming_the_input(runtime, http, change, detail):
    alice, workflow_id = await _setup(runtime)
    before = await money_snapshot(runtime)
    for path in ("/workflow/run/submit", "/workflow/run/quote"):
        response = await post_json(http, path, _submit(workflow_id, **change), alice)
        assert error_of(response) == (400, "INVALID_WORKFLOW_INPUT", detail)
    assert await money_snapshot(runtime) == before


async def test_bad_text_in_body_fields_names_the_field(runtime, http):
    alice, workflow_id = await _setup(runtime)
    before = await money_snapshot(runtime)
    cases = [
        ("/workflow/run/submit", {**_submit(workflow_id), "workflow_id": "wf_\x00"}),
        ("/workflow/run/cancel", {"run_order_id": "run_\x00"}),
        ("/model-runs/cancel", {"run_id": f"run_{SURROGATE}"}),
    ]
    details = [
        "workflow_id: contains a NUL character",
        "run_order_id: contains a NUL character",
        "run_id: contains an unpaired surrogate (U+D800)",
    ]
    for (path, body), detail in zip(cases, details, strict=True):
        response = await post_json(http, path, body, alice)
        assert error_of(response) == (400, "INVALID_PARAMETER", detail)
    key = await post_json(
        http, "/workflow/run/submit", {**_submit(workflow_id), "idempotency_key": "k\x00"}, alice
    )
    assert error_of(key) == (
        400,
        "IDEMPOTENCY_KEY_REQUIRED",
        "idempotency_key: contains a NUL character",
    )
    odd = await post_json(http, "/workflow/run/submit", {**_submit(workflow_id), "x\x00": 1}, alice)
    assert error_of(odd) == (400, "INVALID_PARAMETER", "body: a key contains a NUL character")
    assert await money_snapshot(runtime) == before


async def test_non_finite_numbers_are_refused(runtime, http):
    alice, workflow_id = await _setup(runtime)
    before = await money_snapshot(runtime)
    for raw in ("NaN", "Infinity", "-Infinity", "1e999"):
        text = json.dumps(_submit(workflow_id)).replace(
            '"inputs": {', f'"inputs": {{"n2_width": {raw}, '
        )
        response = await http.post(
            "/workflow/run/submit",
            content=text,
            headers={"content-type": "application/json", **alice.headers},
        )
        assert error_of(response) == (
            400,
            "INVALID_WORKFLOW_INPUT",
            "inputs.n2_width: is not a finite number",
        )
    assert await money_snapshot(runtime) == before


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        (
            "/workflow/run/info",
            {"run_order_id": "run_\x00"},
            "run_order_id: contains a NUL character",
        ),
        (
            "/workflow/run/execution",
            {"run_order_id": "\x00"},
            "run_order_id: contains a NUL character",
        ),
        ("/workflow/run/list", {"workflow_id": "wf\x00"}, "workflow_id: contains a NUL character"),
        ("/workflow/market/list", {"keyword": "a\x00"}, "keyword: contains a NUL character"),
        ("/workflow/market/list", {"tag": "\x00"}, "tag: contains a NUL character"),
        (
            "/workflow/market/info",
            {"workflow_id": "wf_\x00"},
            "workflow_id: contains a NUL character",
        ),
        ("/bill/list", {"order_number": "\x00"}, "order_number: contains a NUL character"),
        ("/model-runs/info", {"run_id": "\x00"}, "run_id: contains a NUL character"),
        ("/assets/asset_%00", {}, "asset_id: contains a NUL character"),
        ("/real-person/verifications/v%00", {}, "verification_id: contains a NUL character"),
    ],
)
async def test_nul_in_query_and_path_is_a_400_naming_it(runtime, http, path, params, detail):
    alice = await customer(runtime)
    response = await http.get(path, params=params, headers=alice.headers)
    assert error_of(response) == (400, "INVALID_PARAMETER", detail)


def _multipart(filename: bytes, **fields: bytes) -> bytes:
    parts = [
        b'--b\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n' + value
        for name, value in fields.items()
    ]
    parts.append(
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="'
        + filename
        + b'"\r\nContent-Type: image/png\r\n\r\n'
        + png_bytes()
    )
    return b"\r\n".join(parts) + b"\r\n--b--\r\n"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (_multipart(b"a\x00.png"), "filename: contains a NUL character"),
        (_multipart(b"a.png", media_type=b"image\x00"), "media_type: contains a NUL character"),
        (
            _multipart(b"a.png", ttl_hours="²".encode()),
            "ttl_hours must be a whole number of hours, got '²'",
        ),
        (
            _multipart(b"a.png", ttl_hours="٣".encode()),
            "ttl_hours must be a whole number of hours, got '٣'",
        ),
    ],
    ids=["nul-filename", "nul-field", "superscript-ttl", "arabic-indic-ttl"],
)
async def test_bad_upload_fields_are_a_400(runtime, http, body, detail):
    alice = await customer(runtime)
    before = await money_snapshot(runtime)
    response = await http.post(
        "/assets",
        content=body,
        headers={**alice.headers, "content-type": "multipart/form-data; boundary=b"},
    )
    assert error_of(response) == (400, "INVALID_PARAMETER", detail)
    assert list((runtime.settings.data_dir / "tmp").glob("*")) == []
    assert await money_snapshot(runtime) == before


async def test_non_ascii_signatures_are_403_without_authentication(runtime, server):
    signature = "é" * 64
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        download = await client.get(f"/files/assets/x?expires=99999999999&signature={signature}")
        callback = await client.post(
            f"/provider/ark/callback/run_x?expires=99999999999&signature={signature}"
        )
        forged = await client.get(f"/files/assets/x?expires=99999999999&signature={'0' * 64}")
    for response in (download, callback):
        assert error_of(response) == (
            403,
            "SIGNED_URL_INVALID",
            "the link's signature is not hexadecimal",
        )
    assert error_of(forged) == (403, "SIGNED_URL_INVALID", "the link's signature does not match")


def test_the_envelope_renders_whatever_the_detail_holds():
    response = envelope(400, "Bad.", f"key {SURROGATE} and \x00", "INVALID_PARAMETER")
    error = json.loads(bytes(response.body))["data"]["error"]
    assert error["detail"] == "key \\ud800 and \x00"
