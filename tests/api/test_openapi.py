"""The OpenAPI document describes every public endpoint, and unknown paths use the envelope."""

from __future__ import annotations

EXPECTED = {
    "/api/open/v2/workflow/market/list": "get",
    "/api/open/v2/workflow/market/info": "get",
    "/api/open/v2/workflow/run/submit": "post",
    "/api/open/v2/workflow/run/quote": "post",
    "/api/open/v2/workflow/run/cancel": "post",
    "/api/open/v2/workflow/run/list": "get",
    "/api/open/v2/workflow/run/info": "get",
    "/api/open/v2/workflow/run/execution": "get",
    "/api/open/v2/balance/info": "get",
    "/api/open/v2/bill/list": "get",
    "/api/open/v2/recharge/list": "get",
    "/api/open/v2/assets": "post",
    "/api/open/v2/assets/{asset_id}": "get",
}


async def test_openapi_lists_every_endpoint(http):
    document = (await http.get("/openapi.json")).json()
    paths = document["paths"]
    for path, method in EXPECTED.items():
        assert method in paths.get(path, {}), path
    upload = paths["/api/open/v2/assets"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    assert "402" in paths["/api/open/v2/workflow/run/submit"]["post"]["responses"]


async def test_unknown_paths_and_methods_use_the_envelope(http):
    missing = await http.get("/nope")
    assert missing.status_code == 404
    assert missing.json()["data"]["error"]["engine_code"] == "ENDPOINT_NOT_FOUND"
    wrong = await http.get("/workflow/run/submit")
    assert wrong.status_code == 405
    assert wrong.json()["data"]["error"]["engine_code"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["allow"] == "POST"
