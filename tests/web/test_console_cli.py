"""``wfrun accounts create --operator``, ``accounts invite`` and ``accounts set-role``."""

from __future__ import annotations

import asyncio
import json

from wfrun.db.database import Database
from wfrun.services import console_auth


def _role(settings, account_id: str) -> str:
    async def read() -> str:
        db = Database(settings.resolved_database_url)
        try:
            return await console_auth.role_of(db, account_id)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_an_operator_is_created_and_a_customer_invited(invoke, settings):
    operator = json.loads(invoke("accounts", "create", "Ops", "--operator", "--json").output)
    customer = invoke("accounts", "create", "Studio Li").output.strip()
    assert _role(settings, operator["id"]) == "operator"
    assert _role(settings, customer) == "customer"
    link = invoke("accounts", "invite", customer, "--email", "Li@Example.com").output.strip()
    assert link.startswith(f"http://{settings.host}:{settings.port}/console/invite/")
    made = json.loads(
        invoke("accounts", "invite", customer, "--email", "li@example.com", "--json").output
    )
    assert made["email"] == "li@example.com"
    assert made["account_id"] == customer
    assert made["link"] != link  # a fresh one-time token each time
    refused = invoke("accounts", "invite", operator["id"], "--email", "li@example.com", code=1)
    assert "li@example.com already signs in to another account" in refused.output
    invoke("accounts", "set-role", customer, "operator")
    assert _role(settings, customer) == "operator"
