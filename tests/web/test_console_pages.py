"""Console pages that page and pages that belong to one account: bills, top-ups and the
webhook delivery log page on their own; another account's webhook endpoint, API key and
private workflow are not found (and stay as they were)."""

from __future__ import annotations

import re

from tests.web.console import World, csrf_of, signed_in_client
from wfrun.services import accounts, catalog, seed, webhooks


async def test_top_ups_page_apart_from_bills(runtime, world: World, console):
    for n in range(21):
        await accounts.top_up(runtime.db, account_id=world.customer_id, amount=n + 1, memo=f"m{n}")
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        first = await client.get("/console/billing")
        assert "Page 1 of 2 (22 in all)" in first.text
        assert 'href="?page=1&amp;topups_page=2" rel="next"' in first.text
        second = await client.get("/console/billing", params={"topups_page": 2})
        memos = re.findall(r"<td>(welcome|m\d+)</td>", second.text)
        assert len(memos) == 2
        assert "Page 2 of 2 (22 in all)" in second.text
        hooks = await client.get("/console/webhooks", params={"page": 2})
        assert hooks.status_code == 200
        assert 'href="?page=1" rel="prev"' in hooks.text


async def test_another_accounts_endpoint_key_and_private_workflow_are_not_found(
    runtime, world: World, console
):
    other = await accounts.create_account(runtime.db, display_name="Other")
    key = await accounts.create_key(runtime.db, account_id=other, name="theirs")
    change = webhooks.EndpointChange(url="https://example.com/hook", description="")
    endpoint, _ = await webhooks.create(
        runtime.db, runtime.webhook_box, runtime.webhook_policy, other, change
    )
    private = seed.demo_package() | {"slug": "secret-poster", "visibility": "private"}
    hidden = await catalog.import_package(
        runtime.db, owner_id=other, document=private, publish=True
    )
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        token = csrf_of((await client.get("/console/keys")).text)
        revoke = await client.post(f"/console/keys/{key.key_id}/revoke", data={"csrf_token": token})
        assert revoke.status_code == 404
        delete = await client.post(
            f"/console/webhooks/{endpoint.id}/delete", data={"csrf_token": token}
        )
        assert delete.status_code == 404
        log = await client.get("/console/webhooks", params={"endpoint_id": endpoint.id})
        assert log.status_code == 404
        assert f"endpoint {endpoint.id} not found" in log.text
        page = await client.get(f"/console/workflows/{hidden.workflow_id}")
        assert page.status_code == 404
        quote = await client.post(
            f"/console/workflows/{hidden.workflow_id}/quote", headers={"X-CSRF-Token": token}
        )
        assert quote.status_code == 404
        market = await client.get("/console/")
        assert hidden.workflow_id not in market.text
    assert [k.revoked_at for k in await accounts.list_keys(runtime.db, other)] == [None]
    assert [e.id for e in await webhooks.list_all(runtime.db, other)] == [endpoint.id]


async def test_a_package_too_large_says_what_limits_it(runtime, world: World, console):
    limit = runtime.settings.api.max_json_bytes
    async with signed_in_client(runtime, console, world.operator_id, "ops@example.com") as boss:
        token = csrf_of((await boss.get("/console/operator/workflows")).text)
        refused = await boss.post(
            "/console/operator/workflows/import",
            data={"csrf_token": token},
            files={"package": ("big.json", b"{" + b" " * limit + b"}", "application/json")},
        )
    assert refused.status_code == 413
    assert "WFRUN_API__MAX_JSON_BYTES" in refused.text
    assert "POST /assets" not in refused.text
