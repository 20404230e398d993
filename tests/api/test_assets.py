"""Assets: upload → asset:// → run → output, and every refusal changing nothing.

SQLite runs with the local store, PostgreSQL with the S3 backend (moto on loopback).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from tests.support.factories import (
    Customer,
    customer,
    drain,
    money_snapshot,
    operator,
    png_bytes,
    publish_demo,
)
from wfrun.clock import utcnow
from wfrun.db.schema import assets, runs
from wfrun.runtime import Runtime
from wfrun.services import assets as asset_service
from wfrun.storage.local import LocalStorage
from wfrun.storage.s3 import S3Storage


async def upload(
    http: httpx.AsyncClient,
    who: Customer,
    data: bytes,
    filename: str = "photo.png",
    **fields: str,
) -> httpx.Response:
    return await http.post(
        "/assets",
        files={"file": (filename, data, "application/octet-stream")},
        data=fields,
        headers=who.headers,
    )


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    error = response.json()["data"]["error"]
    assert error["status_code"] == response.status_code
    return response.status_code, error["engine_code"], error["detail"]


async def stored_keys(runtime: Runtime) -> list[str]:
    """Every object the store holds (local directory or S3 prefix)."""
    store = runtime.storage
    if isinstance(store, LocalStorage):
        return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*") if p.is_file())
    assert isinstance(store, S3Storage)
    listing = store.client.list_objects_v2(Bucket=store.bucket, Prefix=store.prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


async def _backdate(runtime: Runtime, asset_id: str, hours: float = 1) -> None:
    async with runtime.db.transaction(write=True) as conn:
        await conn.execute(
            update(assets)
            .where(assets.c.id == asset_id)
            .values(expires_at=utcnow() - timedelta(hours=hours))
        )


async def test_upload_then_run_with_asset_uri(runtime, http):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime)
    image = png_bytes(60, 30)
    response = await upload(http, alice, image, media_type="image", ttl_hours="2")
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["asset_uri"] == f"asset://{data['asset_id']}"
    assert (data["media_type"], data["mime_type"], data["size_bytes"]) == (
        "image",
        "image/png",
        len(image),
    )
    assert (data["purpose"], data["status"], data["persistent"]) == ("temp_input", "ready", False)
    async with httpx.AsyncClient() as plain:
        assert (await plain.get(data["signed_url"])).content == image
    fetched = await http.get(f"/assets/{data['asset_id']}", headers=alice.headers)
    assert fetched.json()["data"]["asset_id"] == data["asset_id"]
    content = await http.get(
        f"/assets/{data['asset_id']}/content", headers=alice.headers, follow_redirects=True
    )
    assert content.content == image

    body = {
        "workflow_id": workflow_id,
        "idempotency_key": "a1",
        "inputs": {"n1_image": {"uri": data["asset_uri"], "role": "source"}, "n2_width": 120},
    }
    submitted = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    assert submitted.status_code == 200, submitted.text
    await drain(runtime)
    run_id = submitted.json()["data"]["run_order_id"]
    view = (
        await http.get(
            "/workflow/run/execution", params={"run_order_id": run_id}, headers=alice.headers
        )
    ).json()["data"]
    assert view["status"] == "succeeded", view["error"]
    async with httpx.AsyncClient() as plain:
        output = await plain.get(view["outputs"]["n5_images"][0])
    assert output.status_code == 200
    assert output.content.startswith(b"\x89PNG")


REFUSED_UPLOADS: list[tuple[dict[str, Any], int, str, str]] = [
    (
        {"media_type": "video"},
        400,
        "INVALID_ASSET",
        "media_type is video but the bytes are image/png",
    ),
    (
        {"filename": "clip.mp4"},
        400,
        "INVALID_ASSET",
        "the file name 'clip.mp4' says video/mp4 but the bytes are image/png",
    ),
    (
        {"data": b"just text", "media_type": "image"},
        400,
        "INVALID_ASSET",
        "the bytes are not a recognised image format",
    ),
    ({"purpose": "forever"}, 400, "INVALID_ASSET", "purpose must be one of temp_input"),
    ({"ttl_hours": "0"}, 400, "INVALID_ASSET", "ttl_hours must be between 1 and 720"),
    (
        {"ttl_hours": "soon"},
        400,
        "INVALID_PARAMETER",
        "ttl_hours must be a whole number of hours, got 'soon'",
    ),
    ({"data": b""}, 400, "INVALID_ASSET", "the file is empty"),
]


@pytest.mark.parametrize(("change", "status", "code", "detail"), REFUSED_UPLOADS)
async def test_refused_uploads_keep_nothing(runtime, http, change, status, code, detail):
    alice = await customer(runtime)
    before = await money_snapshot(runtime)
    fields = {k: v for k, v in change.items() if k not in ("data", "filename")}
    response = await upload(
        http, alice, change.get("data", png_bytes()), change.get("filename", "photo.png"), **fields
    )
    assert error_of(response) == (status, code, detail)
    assert await stored_keys(runtime) == []
    assert list((runtime.settings.data_dir / "tmp").glob("*")) == []
    assert await money_snapshot(runtime) == before


async def test_oversized_upload_is_413_and_keeps_nothing(runtime, http):
    runtime.settings.assets.max_upload_bytes = 200_000
    alice = await customer(runtime)
    big = png_bytes() + b"\0" * 300_000
    response = await upload(http, alice, big)
    assert error_of(response)[:2] == (413, "ASSET_TOO_LARGE")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n\r\n'
        for _ in range(40):
            yield b"\0" * 10_000
        yield b"\r\n--b--\r\n"

    streamed = await http.post(
        "/assets",
        content=chunks(),
        headers={**alice.headers, "content-type": "multipart/form-data; boundary=b"},
    )
    assert error_of(streamed) == (
        413,
        "ASSET_TOO_LARGE",
        "the file is larger than the 200000-byte limit",
    )
    assert await stored_keys(runtime) == []
    assert list((runtime.settings.data_dir / "tmp").glob("*")) == []


async def test_bad_multipart_requests(runtime, http):
    alice = await customer(runtime)
    no_file = await http.post(
        "/assets",
        data={"media_type": "image"},
        headers=alice.headers,
        files={"other": ("a.txt", b"x")},
    )
    assert error_of(no_file) == (
        400,
        "INVALID_PARAMETER",
        "send exactly one file, in the field named 'file'",
    )
    not_multipart = await http.post("/assets", json={"file": "x"}, headers=alice.headers)
    assert error_of(not_multipart)[:2] == (400, "INVALID_PARAMETER")
    anonymous = await http.post("/assets", files={"file": ("a.png", png_bytes())})
    assert error_of(anonymous)[:2] == (401, "API_KEY_MISSING")


async def test_other_accounts_and_expired_assets(runtime, http):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice, bob = await customer(runtime), await customer(runtime, name="bob")
    asset_id = (await upload(http, alice, png_bytes())).json()["data"]["asset_id"]

    foreign = await http.get(f"/assets/{asset_id}", headers=bob.headers)
    assert error_of(foreign) == (404, "ASSET_NOT_FOUND", f"asset {asset_id} does not exist")
    body = {
        "workflow_id": workflow_id,
        "idempotency_key": "x",
        "inputs": {"n1_image": f"asset://{asset_id}"},
    }
    stolen = await http.post("/workflow/run/submit", json=body, headers=bob.headers)
    assert error_of(stolen) == (
        400,
        "INVALID_WORKFLOW_INPUT",
        f"input n1_image: asset {asset_id} does not exist",
    )

    await _backdate(runtime, asset_id)
    before = await money_snapshot(runtime)
    expired = await http.get(f"/assets/{asset_id}", headers=alice.headers)
    status, code, detail = error_of(expired)
    assert (status, code) == (404, "ASSET_EXPIRED")
    assert detail.startswith(f"asset {asset_id} expired at ")
    late = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    assert error_of(late)[:2] == (400, "INVALID_WORKFLOW_INPUT")
    assert f"input n1_image: asset {asset_id} expired at " in error_of(late)[2]
    assert await money_snapshot(runtime) == before


async def test_asset_type_must_fit_the_input(runtime, http):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime)
    pdf = (await upload(http, alice, b"%PDF-1.7 test", "doc.pdf")).json()["data"]
    assert pdf["media_type"] == "file"
    body = {
        "workflow_id": workflow_id,
        "idempotency_key": "t",
        "inputs": {"n1_image": pdf["asset_uri"]},
    }
    response = await http.post("/workflow/run/submit", json=body, headers=alice.headers)
    assert error_of(response) == (
        400,
        "INVALID_WORKFLOW_INPUT",
        f"input n1_image must be image; asset {pdf['asset_id']} is application/pdf",
    )


async def test_retention_spares_assets_that_active_runs_need(runtime, http):
    owner = await operator(runtime)
    workflow_id = (await publish_demo(runtime, owner)).workflow_id
    alice = await customer(runtime)
    used = (await upload(http, alice, png_bytes())).json()["data"]["asset_id"]
    idle = (await upload(http, alice, png_bytes(10, 10))).json()["data"]["asset_id"]
    body = {
        "workflow_id": workflow_id,
        "idempotency_key": "r",
        "inputs": {"n1_image": f"asset://{used}"},
    }
    run_id = (await http.post("/workflow/run/submit", json=body, headers=alice.headers)).json()[
        "data"
    ]["run_order_id"]
    await _backdate(runtime, used)
    await _backdate(runtime, idle)

    assert await asset_service.sweep(runtime.db, runtime.storage) == (1, 0)
    keys = await stored_keys(runtime)
    assert any(k.endswith(f"assets/{used}") for k in keys)
    assert not any(k.endswith(f"assets/{idle}") for k in keys)

    await drain(runtime)  # the queued run still gets its input
    view = (
        await http.get(
            "/workflow/run/execution", params={"run_order_id": run_id}, headers=alice.headers
        )
    ).json()["data"]
    assert view["status"] == "succeeded", view["error"]
    assert await asset_service.sweep(runtime.db, runtime.storage) == (1, 0)
    assert not any(k.startswith("assets/") or "/assets/" in k for k in await stored_keys(runtime))

    async with runtime.db.transaction(write=True) as conn:
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id)
            .values(outputs_expire_at=utcnow() - timedelta(seconds=1))
        )
    assert await asset_service.sweep(runtime.db, runtime.storage) == (0, 1)
    assert await stored_keys(runtime) == []
    view = (
        await http.get(
            "/workflow/run/execution", params={"run_order_id": run_id}, headers=alice.headers
        )
    ).json()["data"]
    assert view["outputs"]["n5_images"] == [None]
    assert view["outputs"]["n7_text"] == "hello from wfrun"
