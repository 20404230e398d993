"""The composition root: everything a process needs, built once from settings."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from wfrun.config import Settings, ensure_secret_key
from wfrun.engines.base import Engine
from wfrun.engines.registry import build_engines
from wfrun.services.runs import Policy
from wfrun.storage.base import ObjectStore
from wfrun.storage.local import LocalStorage
from wfrun.storage.signing import UrlSigner
from wfrun.store.database import Database
from wfrun.store.migrate import upgrade


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: ObjectStore
    signer: UrlSigner
    engines: dict[str, Engine]
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after a submit commits, so an in-process worker claims without waiting to poll."""

    @property
    def policy(self) -> Policy:
        return Policy(
            require_external_cost_consent=self.settings.billing.require_external_cost_consent,
            max_attempts=self.settings.worker.max_attempts,
        )

    async def close(self) -> None:
        await self.db.dispose()


async def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Open the database (migrating it to head), storage and engines."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if migrate:
        await upgrade(db)
    storage_dir = settings.resolved_storage_dir
    storage_dir.mkdir(parents=True, exist_ok=True)
    return Runtime(
        settings=settings,
        db=db,
        storage=LocalStorage(storage_dir),
        signer=UrlSigner(ensure_secret_key(settings)),
        engines=build_engines(),
    )
