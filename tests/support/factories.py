"""Keyword-only builders over the real services (no rows written behind wfrun's back)."""

from __future__ import annotations

import base64
import copy
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image
from sqlalchemy import func, select

from wfrun.db.schema import accounts as accounts_table
from wfrun.db.schema import freezes, jobs, ledger_entries, ledger_postings, runs
from wfrun.domain.money import parse_amount
from wfrun.runtime import Runtime
from wfrun.services import accounts, catalog
from wfrun.services.seed import demo_package
from wfrun.workers.worker import Worker


@dataclass(frozen=True)
class Customer:
    account_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def customer(rt: Runtime, *, balance: str = "10", name: str = "customer") -> Customer:
    account_id = await accounts.create_account(rt.db, display_name=name)
    if parse_amount(balance) > 0:
        await accounts.top_up(rt.db, account_id=account_id, amount=parse_amount(balance))
    key = await accounts.create_key(rt.db, account_id=account_id)
    return Customer(account_id, key.secret)


async def operator(rt: Runtime) -> str:
    return await accounts.create_account(rt.db, display_name="operator")


async def publish_demo(rt: Runtime, owner: str, **changes: Any) -> catalog.ImportResult:
    """Import and publish the shipped demo package (with top-level ``changes``)."""
    document = demo_package()
    document.update(changes)
    return await catalog.import_package(rt.db, owner_id=owner, document=document, publish=True)


def sleepy_package(*, seconds: float = 1.0, price_per_second: str = "0.01") -> dict[str, Any]:
    """EmptyImage → TestSleep → ImageInvert → SaveImage: a run that takes ``seconds``."""
    return {
        "format": "wfrun.workflow/v1",
        "slug": "sleepy",
        "title": "Sleepy",
        "engine": "local",
        "graph": {
            "1": {
                "class_type": "EmptyImage",
                "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
            },
            "2": {"class_type": "TestSleep", "inputs": {"value": ["1", 0], "seconds": seconds}},
            "3": {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}},
            "4": {
                "class_type": "SaveImage",
                "inputs": {"images": ["3", 0], "filename_prefix": "sleepy"},
            },
        },
        "inputs": [
            {"key": "n2_seconds", "type": "number", "default_value": seconds, "min": 0, "max": 60}
        ],
        "outputs": [{"key": "n4_images", "type": "image", "multiple": True}],
        "pricing": {
            "fixed_fee": "0.01",
            "price_per_second": price_per_second,
            "estimated_seconds": 10,
        },
        "timeout_seconds": 60,
    }


async def publish_package(rt: Runtime, owner: str, document: dict[str, Any]) -> str:
    result = await catalog.import_package(
        rt.db, owner_id=owner, document=copy.deepcopy(document), publish=True
    )
    return result.workflow_id


def png_bytes(
    width: int = 32, height: int = 24, color: tuple[int, int, int] = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def data_uri(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


async def drain(rt: Runtime) -> None:
    """Run every queued job to completion with a burst-mode worker."""
    worker = Worker(rt)
    await worker.run_until_idle()


async def money_snapshot(rt: Runtime) -> dict[str, Any]:
    """Row counts and balances: what 'nothing changed' is checked against."""
    async with rt.db.transaction() as conn:
        counts = {
            t.name: (await conn.execute(select(func.count()).select_from(t))).scalar_one()
            for t in (runs, freezes, jobs, ledger_entries, ledger_postings)
        }
        balances = (
            await conn.execute(
                select(
                    accounts_table.c.id, accounts_table.c.available, accounts_table.c.frozen
                ).order_by(accounts_table.c.id)
            )
        ).all()
    return {"counts": counts, "balances": [tuple(b) for b in balances]}


async def account_balance(rt: Runtime, account_id: str) -> tuple[int, int]:
    account = await accounts.get_account(rt.db, account_id)
    return account.available, account.frozen
