"""The embedded default's demo: an operator, a demo user with credit, a key and a workflow.

Seeding happens only into an empty store. The demo key is kept in ``data_dir/demo_api_key``
(mode 0600) so every start can print it; no other key is ever stored in clear.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from wfrun.db import accounts as accounts_db
from wfrun.db.database import Database
from wfrun.domain.money import parse_amount
from wfrun.services import accounts, catalog
from wfrun.services.model_runs import SYSTEM_ACCOUNT

DEMO_BALANCE = parse_amount("100")
KEY_FILE = "demo_api_key"


@dataclass(frozen=True)
class Demo:
    api_key: str | None
    """The demo key when this call created it (print it once), else None (it is in
    ``data_dir/demo_api_key`` if this data directory seeded the store)."""


def demo_package(name: str = "poster") -> Any:
    """A demo workflow package shipped with wfrun (``poster``, ``seedance_video``, …)."""
    text = resources.files("wfrun").joinpath(f"demo/{name}.json").read_text(encoding="utf-8")
    return json.loads(text)


async def _store_is_empty(db: Database) -> bool:
    async with db.transaction() as conn:
        accounts_ = await accounts_db.list_accounts(conn)
    return all(a.id == SYSTEM_ACCOUNT for a in accounts_)


async def ensure_demo(db: Database, data_dir: Path, *, with_seedance: bool = False) -> Demo:
    """Seed the demo into an empty store; return its key if it was just created.
    ``with_seedance`` (Ark is configured) also publishes the Seedance video demo."""
    key_file = data_dir / KEY_FILE
    if not await _store_is_empty(db):
        return Demo(api_key=None)
    operator = await accounts.create_account(db, display_name="wfrun demo operator")
    user = await accounts.create_account(db, display_name="demo user")
    await accounts.top_up(db, account_id=user, amount=DEMO_BALANCE, memo="demo credit")
    key = await accounts.create_key(db, account_id=user, name="demo")
    await catalog.import_package(db, owner_id=operator, document=demo_package(), publish=True)
    if with_seedance:
        document = demo_package("seedance_video")
        await catalog.import_package(db, owner_id=operator, document=document, publish=True)
    data_dir.mkdir(parents=True, exist_ok=True)
    key_file.write_text(key.secret + "\n")
    key_file.chmod(0o600)
    return Demo(api_key=key.secret)
