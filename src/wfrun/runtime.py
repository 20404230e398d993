"""The composition root: everything a process needs, built once from settings."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field

from wfrun.config import AssetSettings, Settings, ensure_secret_key
from wfrun.engines.base import Engine
from wfrun.engines.registry import build_engines, close_engines
from wfrun.fetch import FetchPolicy, SafeFetcher
from wfrun.services.runs import Policy
from wfrun.storage.base import ObjectStore
from wfrun.storage.local import LocalStorage
from wfrun.storage.s3 import S3Config, S3Storage
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
    fetcher: SafeFetcher
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after a submit commits, so an in-process worker claims without waiting to poll."""

    @property
    def policy(self) -> Policy:
        return Policy(
            require_external_cost_consent=self.settings.billing.require_external_cost_consent,
            max_attempts=self.settings.worker.max_attempts,
        )

    async def close(self) -> None:
        await close_engines(self.engines)
        await self.fetcher.aclose()
        await self.db.dispose()


async def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Open the database (migrating it to head), storage and engines."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if migrate:
        await upgrade(db)
    return Runtime(
        settings=settings,
        db=db,
        storage=await build_storage(settings),
        signer=UrlSigner(ensure_secret_key(settings)),
        engines=build_engines(),
        fetcher=SafeFetcher(fetch_policy(settings.assets)),
    )


async def build_storage(settings: Settings) -> ObjectStore:
    """The configured object store (local directory by default)."""
    config = settings.storage
    if config.backend == "local":
        storage_dir = settings.resolved_storage_dir
        storage_dir.mkdir(parents=True, exist_ok=True)
        return LocalStorage(storage_dir)
    s3 = S3Storage(
        S3Config(
            bucket=config.s3_bucket,
            endpoint_url=config.s3_endpoint_url,
            region=config.s3_region,
            prefix=config.s3_prefix,
            access_key_id=config.s3_access_key_id,
            secret_access_key=config.s3_secret_access_key,
            addressing_style=config.s3_addressing_style,
        )
    )
    if config.s3_create_bucket:
        await s3.ensure_bucket()
    return s3


def fetch_policy(assets: AssetSettings) -> FetchPolicy:
    """The URL fetcher's policy: closed by default, opened only by explicit allow-lists."""
    return FetchPolicy(
        max_bytes=assets.fetch_max_bytes,
        timeout_seconds=assets.fetch_timeout_seconds,
        allow_hosts=frozenset(h.lower() for h in assets.fetch_allow_hosts),
        allow_networks=tuple(
            ipaddress.ip_network(n, strict=False) for n in assets.fetch_allow_networks
        ),
    )
