"""Console sessions end: at sign-out and at a password change (every older cookie dies), and
seven days after sign-in however busy; API-key sessions are customer-only, cannot touch keys
or webhooks and end with their key; sign-in limits hold under parallel attempts; invitations
leave one live link and survive racing each other."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import time
from datetime import timedelta

import httpx

from tests.web.console import (
    PASSWORD,
    World,
    accept,
    csrf_of,
    invitation_path,
    signed_in_client,
)
from wfrun.clock import utcnow
from wfrun.db import console as console_db
from wfrun.errors import InvalidParameter, TooManyRequests, Unauthenticated
from wfrun.runtime import ensure_secret_key
from wfrun.services import accounts, console_auth
from wfrun.web.session import COOKIE, MAX_AGE, Session, Sessions


async def _status_with(console, cookie: str, path: str = "/console/billing") -> int:
    async with httpx.AsyncClient(base_url=console.base_url, cookies={COOKIE: cookie}) as client:
        return (await client.get(path)).status_code


async def test_an_old_cookie_is_dead_after_sign_out_and_after_a_new_password(
    runtime, world: World, console
):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        stolen = client.cookies[COOKIE]
        assert await _status_with(console, stolen) == 200
        page = await client.get("/console/billing")
        out = await client.post("/console/logout", data={"csrf_token": csrf_of(page.text)})
        assert out.status_code == 303
    replay = await _status_with(console, stolen)
    assert replay == 303  # back to the sign-in page
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        login = await client.get("/console/login")
        form = {"csrf_token": csrf_of(login.text), "email": "one@example.com", "password": PASSWORD}
        assert (await client.post("/console/login", data=form)).status_code == 303
        second = client.cookies[COOKIE]
    assert await _status_with(console, second) == 200
    reset = await invitation_path(runtime, world.customer_id, "one@example.com")
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        assert (await accept(client, reset, "another password")).status_code == 303
    assert await _status_with(console, second) == 303


async def test_a_session_ends_seven_days_after_sign_in_however_busy(runtime, world: World, console):
    async with signed_in_client(runtime, console, world.customer_id, "one@example.com") as client:
        identity = await console_auth.sign_in(
            runtime.db,
            email="one@example.com",
            password=PASSWORD,
            address="10.0.0.1",
            limit=console_auth.LoginLimit(),
        )
    sessions = Sessions(ensure_secret_key(runtime.settings))
    user_id, now = identity.principal.api_key_id, int(time.time())
    young = Session("c" * 32, user_id, None, identity.epoch, now - MAX_AGE + 120)
    old = Session("c" * 32, user_id, None, identity.epoch, now - MAX_AGE - 1)
    async with httpx.AsyncClient(
        base_url=console.base_url, cookies={COOKIE: sessions.dumps(young)}
    ) as client:
        answer = await client.get("/console/billing")
        assert answer.status_code == 200
        left = re.search(r"Max-Age=(\d+)", answer.headers["set-cookie"])
        assert left is not None
        assert 60 <= int(left.group(1)) <= 120  # the sign-in time is kept, not 7 days again
    assert await _status_with(console, sessions.dumps(old)) == 303


async def test_an_api_key_session_is_a_customer_that_cannot_touch_keys_and_ends_with_the_key(
    runtime, world: World, console
):
    key = await accounts.create_key(runtime.db, account_id=world.operator_id, name="ops key")
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        login = await client.get("/console/login")
        token = csrf_of(login.text)
        signed = await client.post(
            "/console/login", data={"csrf_token": token, "api_key": key.secret}
        )
        assert signed.status_code == 303
        assert (await client.get("/console/operator/accounts")).status_code == 404
        page = await client.get("/console/keys")
        assert page.status_code == 200
        assert 'id="key-session-note"' in page.text
        assert 'action="/console/keys"' not in page.text
        token = csrf_of(page.text)
        made = await client.post("/console/keys", data={"csrf_token": token, "name": "more"})
        assert made.status_code == 403
        revoke = await client.post(f"/console/keys/{key.key_id}/revoke", data={"csrf_token": token})
        assert revoke.status_code == 403
        hooks_page = await client.get("/console/webhooks")
        assert 'id="key-session-note"' in hooks_page.text
        hook = {"csrf_token": token, "url": "https://example.com/hook"}
        assert (await client.post("/console/webhooks", data=hook)).status_code == 403
        assert [k.id for k in await accounts.list_keys(runtime.db, world.operator_id)] == [
            key.key_id
        ]
        assert (await client.get("/console/billing")).status_code == 200
        await accounts.revoke_key(runtime.db, key.key_id)
        assert (await client.get("/console/billing")).status_code == 303


async def test_parallel_sign_ins_check_at_most_five_passwords(runtime, world: World, console):
    path = await invitation_path(runtime, world.customer_id, "one@example.com")
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        assert (await accept(client, path)).status_code == 303
    async with httpx.AsyncClient(base_url=console.base_url, timeout=120) as client:
        token = csrf_of((await client.get("/console/login")).text)
        wrong = {"csrf_token": token, "email": "one@example.com", "password": "nope-nope"}
        answers = await asyncio.gather(
            *(client.post("/console/login", data=wrong) for _ in range(20))
        )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * 5 + [429] * 15


async def _sign_in(runtime, email: str, address: str, limit) -> str:
    try:
        await console_auth.sign_in(
            runtime.db, email=email, password="wrong password", address=address, limit=limit
        )
    except Unauthenticated:
        return "401"
    except TooManyRequests:
        return "429"
    return "200"


async def test_limits_per_email_across_addresses_and_per_address_across_emails(runtime, world):
    limit = console_auth.LoginLimit(attempts=2, per_email=3, per_address=4)
    tries = [("a@example.com", "10.0.0.1"), ("a@example.com", "10.0.0.2")]
    tries += [("a@example.com", "10.0.0.3")]  # the email's fourth failure anywhere
    got = [await _sign_in(runtime, email, address, limit) for email, address in tries]
    assert got == ["401", "401", "401"]
    assert await _sign_in(runtime, "a@example.com", "10.0.0.4", limit) == "429"
    v6 = [f"2001:db8:1:2::{n}" for n in range(1, 6)]
    emails = [f"u{n}@example.com" for n in range(5)]
    got = [await _sign_in(runtime, e, a, limit) for e, a in zip(emails, v6, strict=True)]
    assert got == ["401", "401", "401", "401", "429"]  # one /64, four emails, then refused
    assert await _sign_in(runtime, "u9@example.com", "2001:db8:1:3::1", limit) == "401"


async def test_a_new_invitation_retires_the_older_link(runtime, world: World, console):
    first = await invitation_path(runtime, world.customer_id, "one@example.com")
    second = await invitation_path(runtime, world.customer_id, "one@example.com")
    async with httpx.AsyncClient(base_url=console.base_url) as client:
        old = await client.get(first)
        assert old.status_code == 400
        assert "this link was already used" in old.text
        assert (await accept(client, second)).status_code == 303


async def test_racing_invitations_and_role_changes_do_not_fail(runtime, world: World):
    made = await asyncio.gather(
        *(
            console_auth.invite(
                runtime.db,
                account_id=world.customer_id,
                email="race@example.com",
                ttl=timedelta(hours=1),
            )
            for _ in range(4)
        )
    )
    assert len({m.user_id for m in made}) == 1
    await asyncio.gather(
        *(console_auth.set_role(runtime.db, world.customer_id, r) for r in ["operator"] * 4)
    )
    assert await console_auth.role_of(runtime.db, world.customer_id) == "operator"
    live = 0
    for m in made:
        try:
            await console_auth.invitation_email(runtime.db, m.token)
            live += 1
        except InvalidParameter:  # a retired link
            continue
    assert live == 1


async def test_a_weak_stored_hash_is_redone_at_sign_in(runtime, world: World):
    made = await console_auth.invite(
        runtime.db, account_id=world.customer_id, email="weak@example.com", ttl=timedelta(hours=1)
    )
    await console_auth.accept_invitation(runtime.db, made.token, PASSWORD)
    salt = b"s" * 16
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    weak = "$".join(
        [
            "scrypt",
            "16384",
            "8",
            "1",
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        ]
    )
    async with runtime.db.transaction(write=True) as conn:
        await console_db.set_password(conn, made.user_id, weak, utcnow())
    assert console_auth.is_weak(weak)
    await console_auth.sign_in(
        runtime.db,
        email="weak@example.com",
        password=PASSWORD,
        address="10.0.0.9",
        limit=console_auth.LoginLimit(),
    )
    async with runtime.db.transaction() as conn:
        user = await console_db.find_user(conn, made.user_id)
    assert user is not None
    assert user.password_hash is not None
    assert user.password_hash.split("$")[1:4] == ["131072", "8", "1"]
    assert console_auth.verify_password(PASSWORD, user.password_hash)
