"""The console over plain HTTP: nobody sees another account's run, every form POST needs the
session's CSRF token, sign-in is rate-limited, invitations work once and expire, operator
pages do not exist for customers, and the language follows the browser or the switch."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from tests.web.console import (
    PASSWORD,
    World,
    accept,
    csrf_of,
    invitation_path,
    revision_of,
    signed_in_client,
)
from wfrun.services import accounts, catalog, console_views, seed
from wfrun.web import i18n
from wfrun.web.words_en import EN
from wfrun.web.words_zh import ZH

SAMPLE = Path(__file__).parents[2] / "docs" / "sample.png"


async def test_a_customer_cannot_open_another_accounts_run(runtime, world: World, console):
    other = await accounts.create_account(runtime.db, display_name="Other")
    await accounts.top_up(runtime.db, account_id=other, amount=10_000_000_000)
    key = await accounts.create_key(runtime.db, account_id=other)
    async with httpx.AsyncClient(base_url=console.base_url + "/api/open/v2") as api:
        headers = {"Authorization": f"Bearer {key.secret}"}
        upload = await api.post(
            "/assets",
            headers=headers,
            files={"file": ("s.png", SAMPLE.read_bytes(), "image/png")},
        )
        asset_uri = upload.json()["data"]["asset_uri"]
        body = {
            "workflow_id": world.workflow_id,
            "idempotency_key": "other-1",
            "inputs": {"n1_image": asset_uri},
        }
        submitted = await api.post("/workflow/run/submit", headers=headers, json=body)
    run_id = submitted.json()["data"]["run_order_id"]
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        for path in (f"/console/runs/{run_id}", f"/console/runs/{run_id}/events"):
            answer = await client.get(path)
            assert answer.status_code == 404, path
        page = await client.get(f"/console/runs/{run_id}")
        assert f"run {run_id} does not exist" in page.text
        assert "RUN_NOT_FOUND" in page.text
        cancel = await client.post(
            f"/console/runs/{run_id}/cancel", data={"csrf_token": csrf_of(page.text)}
        )
        assert cancel.status_code == 404
    async with httpx.AsyncClient(base_url=console.base_url + "/api/open/v2") as api:
        info = await api.get("/workflow/run/info", params={"run_order_id": run_id}, headers=headers)
    assert info.json()["data"]["run_status"] == "queued"  # the refused cancel changed nothing


async def test_a_form_post_without_the_csrf_token_is_refused(runtime, world: World, console):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        page = await client.get("/console/keys")
        assert page.status_code == 200
        for form in ({"name": "k"}, {"name": "k", "csrf_token": "forged"}):
            answer = await client.post("/console/keys", data=form)
            assert answer.status_code == 403
            assert "csrf_token: missing or wrong" in answer.text
        assert await accounts.list_keys(runtime.db, world.customer_id) == []
        quote = await client.post(f"/console/workflows/{world.workflow_id}/quote", data={})
        assert quote.status_code == 403
        assert quote.json()["data"]["error"]["status_code"] == 403
        made = await client.post(
            "/console/keys", data={"name": "k", "csrf_token": csrf_of(page.text)}
        )
        assert made.status_code == 200
        assert len(await accounts.list_keys(runtime.db, world.customer_id)) == 1


async def test_sign_in_is_rate_limited_per_email_and_address(runtime, world: World, console):
    path = await invitation_path(runtime, world.customer_id, "one@example.com")
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        assert (await accept(client, path)).status_code == 303
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        token = csrf_of((await client.get("/console/login")).text)
        wrong = {"csrf_token": token, "email": "one@example.com", "password": "nope-nope"}
        for _ in range(5):
            answer = await client.post("/console/login", data=wrong)
            assert answer.status_code == 401
            assert "the email or password is not right" in answer.text
        right = wrong | {"password": PASSWORD}
        limited = await client.post("/console/login", data=right)
        assert limited.status_code == 429
        assert re.search(r"too many failed sign-ins; try again in \d+ seconds", limited.text)
        other = right | {"email": "someone@example.com"}
        assert (await client.post("/console/login", data=other)).status_code == 401


async def test_an_invitation_works_once_and_expires(runtime, world: World, console):
    path = await invitation_path(runtime, world.customer_id, "one@example.com")
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        assert (await accept(client, path)).status_code == 303
        assert (await client.get("/console/")).status_code == 200
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        again = await client.get(path)
        assert again.status_code == 400
        assert "this link was already used" in again.text
    expired = await invitation_path(runtime, world.customer_id, "one@example.com", seconds=-1)
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        answer = await client.get(expired)
        assert answer.status_code == 400
        assert "this link has expired" in answer.text


async def test_signing_in_with_the_password_and_out(runtime, world: World, console):
    path = await invitation_path(runtime, world.customer_id, "One@Example.com")
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        await accept(client, path)
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        assert (await client.get("/console/billing")).status_code == 303
        login = await client.get("/console/login")
        form = {"csrf_token": csrf_of(login.text), "email": "one@example.com", "password": PASSWORD}
        signed = await client.post("/console/login", data=form)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        billing = await client.get("/console/billing")
        assert billing.status_code == 200
        assert "default-src 'self'" in billing.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in billing.headers["content-security-policy"]
        assert '<strong class="amount" id="balance-available">100.00000000</strong>' in billing.text
        out = await client.post("/console/logout", data={"csrf_token": csrf_of(billing.text)})
        assert out.status_code == 303
        assert (await client.get("/console/billing")).status_code == 303


async def test_operator_pages_are_404_for_customers(runtime, world: World, console):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        for page in ("accounts", "runs", "workflows", "instances", "queue", "webhooks", "ledger"):
            assert (await client.get(f"/console/operator/{page}")).status_code == 404, page
    async with signed_in_client(runtime, console, world.operator_id, "ops@example.com") as boss:
        for page in ("accounts", "runs", "workflows", "instances", "queue", "webhooks", "ledger"):
            assert (await boss.get(f"/console/operator/{page}")).status_code == 200, page
        ledger = await boss.get("/console/operator/ledger")
        assert 'id="ledger-ok"' in ledger.text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_the_language_follows_the_browser_and_the_switch(runtime, world: World, console):
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        zh = await client.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
        assert f"<h1>{ZH['sign_in']}</h1>" in zh.text
        en = await client.get("/console/login", headers={"Accept-Language": "en-US,zh;q=0.5"})
        assert f"<h1>{EN['sign_in']}</h1>" in en.text
        await client.get("/console/lang/zh?next=/console/login")
        switched = await client.get("/console/login", headers={"Accept-Language": "en"})
        assert f"<h1>{ZH['sign_in']}</h1>" in switched.text


def test_both_catalogues_hold_every_word():
    assert set(EN) == set(ZH)
    assert all(value.strip() for value in (*EN.values(), *ZH.values()))


async def test_a_refused_submit_shows_the_error_in_words_and_keeps_the_form(
    runtime, world: World, console
):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        page = await client.get(f"/console/workflows/{world.workflow_id}")
        form = {
            "csrf_token": csrf_of(page.text),
            "revision_id": revision_of(page.text),
            "idempotency_key": "console-1",
            "in_n1_image": "",
            "in_n6_value": "kept caption",
        }
        refused = await client.post(f"/console/workflows/{world.workflow_id}/run", data=form)
        assert refused.status_code == 400
        assert 'data-code="INVALID_WORKFLOW_INPUT"' in refused.text
        assert "n1_image" in refused.text
        assert ">kept caption</textarea>" in refused.text
        runs, _ = await console_views.all_runs(
            runtime.db, account_id=None, workflow_id=None, status=None, page=1, size=10
        )
        assert runs == []  # nothing was submitted, nothing frozen


def test_the_language_pick_honours_quality_values():
    assert i18n.pick(None, "fr-FR, zh;q=0.8, en;q=0.9") == "en"
    assert i18n.pick(None, "fr-FR, zh-TW;q=0.8, en;q=0.5") == "zh"
    assert i18n.pick(None, "zh;q=0, de") == "en"
    assert i18n.pick(None, None) == "en"
    assert i18n.pick("zh", "en") == "zh"
    assert i18n.pick("xx", "zh-CN") == "zh"


async def _console_submit(client: httpx.AsyncClient, world: World) -> str:
    """Upload the sample through the console and run the demo from its form; the run's id."""
    page = await client.get(f"/console/workflows/{world.workflow_id}")
    token = csrf_of(page.text)
    uploaded = await client.post(
        "/console/upload",
        headers={"X-CSRF-Token": token},
        files={"file": ("sample.png", SAMPLE.read_bytes(), "image/png")},
    )
    assert uploaded.status_code == 200, uploaded.text
    form = {
        "csrf_token": token,
        "revision_id": revision_of(page.text),
        "idempotency_key": "console-cancel",
        "in_n1_image": uploaded.json()["data"]["asset_uri"],
    }
    submitted = await client.post(f"/console/workflows/{world.workflow_id}/run", data=form)
    assert submitted.status_code == 303, submitted.text
    return submitted.headers["location"].rsplit("/", 1)[1]


async def test_a_customer_cancels_a_queued_run(runtime, world: World, console):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        run_id = await _console_submit(client, world)
        page = await client.get(f"/console/runs/{run_id}")
        assert 'data-status="queued"' in page.text
        assert (await accounts.get_account(runtime.db, world.customer_id)).frozen == 3_000_000
        cancel = await client.post(
            f"/console/runs/{run_id}/cancel", data={"csrf_token": csrf_of(page.text)}
        )
        assert cancel.status_code == 303
        after = await client.get(f"/console/runs/{run_id}")
        assert 'data-status="cancelled"' in after.text
        assert '<dd data-field="freeze_status">released</dd>' in after.text
    account = await accounts.get_account(runtime.db, world.customer_id)
    assert (account.available, account.frozen) == (10_000_000_000, 0)


async def test_an_operator_invites_imports_publishes_and_cancels(runtime, world: World, console):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        run_id = await _console_submit(client, world)
    async with signed_in_client(runtime, console, world.operator_id, "ops@example.com") as boss:
        page = await boss.get(f"/console/operator/accounts/{world.customer_id}")
        token = csrf_of(page.text)
        invited = await boss.post(
            f"/console/operator/accounts/{world.customer_id}/invite",
            data={"csrf_token": token, "email": "two@example.com"},
        )
        link = re.search(r'id="invite-link" class="mono" readonly value="([^"]+)"', invited.text)
        assert link, invited.text
        assert link.group(1).startswith(console.base_url + "/console/invite/")
        package = json.dumps(seed.demo_package()).encode()
        imported = await boss.post(
            "/console/operator/workflows/import",
            data={"csrf_token": token, "publish": "on"},
            files={"package": ("poster.json", package, "application/json")},
        )
        assert imported.status_code == 303
        detail = await catalog.describe(runtime.db, world.workflow_id)
        first, second = (r.id for r in detail.revisions)
        assert detail.workflow.published_revision_id == second
        back = await boss.post(
            f"/console/operator/workflows/{world.workflow_id}/publish",
            data={"csrf_token": token, "revision_id": first},
        )
        assert back.status_code == 303
        assert (
            await catalog.describe(runtime.db, world.workflow_id)
        ).workflow.published_revision_id == first
        revision = await boss.get(f"/console/operator/revisions/{first}")
        assert "&#34;n1_image&#34;" in revision.text or '"n1_image"' in revision.text
        listed = await boss.get("/console/operator/runs", params={"status": "queued"})
        assert run_id in listed.text
        queue = await boss.get("/console/operator/queue")
        assert re.search(r'<td class="num">1</td><td class="num">0</td>', queue.text), queue.text
        cancelled = await boss.post(
            f"/console/operator/runs/{run_id}/cancel", data={"csrf_token": token}
        )
        assert cancelled.status_code == 303
    async with signed_in_client(runtime, console, world.customer_id, "two@example.com") as two:
        page = await two.get(f"/console/runs/{run_id}")  # the same account, another person
        assert 'data-status="cancelled"' in page.text


async def test_an_import_without_the_csrf_token_is_refused_and_leaves_nothing_open(
    runtime, world: World, console
):
    async with signed_in_client(runtime, console, world.operator_id, "ops@example.com") as boss:
        package = json.dumps(seed.demo_package()).encode()
        refused = await boss.post(
            "/console/operator/workflows/import",
            data={"publish": "on"},
            files={"package": ("poster.json", package, "application/json")},
        )
        assert refused.status_code == 403
    assert len((await catalog.describe(runtime.db, world.workflow_id)).revisions) == 1


async def test_the_form_submits_the_revision_it_showed_or_nothing(runtime, world: World, console):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        page = await client.get(f"/console/workflows/{world.workflow_id}")
        shown = revision_of(page.text)
        await catalog.import_package(
            runtime.db, owner_id=world.operator_id, document=seed.demo_package(), publish=True
        )
        current = (await catalog.describe(runtime.db, world.workflow_id)).workflow
        assert current.published_revision_id != shown
        form = {
            "csrf_token": csrf_of(page.text),
            "revision_id": shown,
            "idempotency_key": "console-stale",
            "in_n1_image": "",
        }
        stale = await client.post(f"/console/workflows/{world.workflow_id}/run", data=form)
        assert stale.status_code == 409
        assert 'data-code="WORKFLOW_NOT_PUBLISHED"' in stale.text
        assert f"revision {shown} shown on the page is no longer published" in stale.text
        assert revision_of(stale.text) == current.published_revision_id
    runs, _ = await console_views.all_runs(
        runtime.db, account_id=None, workflow_id=None, status=None, page=1, size=10
    )
    assert runs == []
