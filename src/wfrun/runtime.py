"""The composition root: everything a process needs, built once from settings."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from wfrun.config import (
    AssetSettings,
    SeedanceSettings,
    Settings,
    WebhookSettings,
)
from wfrun.db.database import Database
from wfrun.db.probe import probe
from wfrun.domain.money import parse_amount
from wfrun.domain.seedance import ModelPrice, PriceBook
from wfrun.engines.base import Engine
from wfrun.engines.registry import build_engines, close_engines
from wfrun.engines.seedance.ark import ArkGateway
from wfrun.engines.seedance.ark import require_sdk as require_ark_sdk
from wfrun.engines.seedance.materials import ControlPlane, MaterialRegistry
from wfrun.errors import ConfigError, DatabaseUnavailable
from wfrun.fetch import FetchPolicy, SafeFetcher
from wfrun.metrics import Metrics
from wfrun.queue.notify import ChannelListener
from wfrun.services.limits import LimitBook
from wfrun.services.live import LiveSignal, StreamPoller
from wfrun.services.rate_limits import RateLimiter
from wfrun.services.runs import Policy
from wfrun.services.seedance_deps import SeedanceDeps
from wfrun.services.webhook_secrets import SecretBox
from wfrun.storage.base import ObjectStore
from wfrun.storage.links import Links
from wfrun.storage.local import LocalStorage
from wfrun.storage.s3 import S3Config, S3Storage
from wfrun.storage.s3 import require_sdk as require_s3_sdk
from wfrun.storage.signing import UrlSigner

STREAM_CHANNEL = "wfrun_stream"
"""Notified (payload: the account id) by the run stream's commit trigger (migration 0009)."""


@dataclass
class Runtime:
    settings: Settings
    db: Database
    storage: ObjectStore
    signer: UrlSigner
    engines: dict[str, Engine]
    fetcher: SafeFetcher
    webhook_box: SecretBox
    """Seals webhook secrets at rest (key derived from ``secret_key``)."""
    webhook_policy: FetchPolicy
    """The address policy of webhook receivers (``webhooks.allow_*``)."""
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    """Set after a submit commits, so an in-process worker claims without waiting to poll."""
    seedance: SeedanceDeps | None = None
    """Volcengine Ark (Seedance) access, when ``seedance.ark_api_key`` is set."""
    live: LiveSignal = field(default_factory=lambda: LiveSignal(poll_seconds=0.1))
    """Wakes event streams, waiting submits and webhook delivery when runs change."""
    metrics: Metrics = field(default_factory=Metrics)
    """This process's Prometheus registry and instruments (never the global registry)."""
    limits: LimitBook = field(init=False)
    """Every account's limits: ``settings.limits`` and the cached per-account overrides."""
    rates: RateLimiter = field(init=False)
    """The API keys' request buckets (the API process keeps them in step with the others)."""
    _listener: ChannelListener | StreamPoller | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.limits = LimitBook(self.settings.limits)
        self.rates = RateLimiter(self.limits)
        self.db.commit_hooks.append(self.live.wake)

    async def listen(self) -> None:
        """Start this process's one follower of other processes' run changes, which wakes
        :attr:`live`: a ``LISTEN wfrun_stream`` connection on PostgreSQL, a
        :class:`StreamPoller` on SQLite. Idempotent; stopped by :meth:`close`."""
        if self._listener is not None:
            return
        if self.db.is_sqlite:
            interval = self.settings.live.poll_interval
            self._listener = StreamPoller(self.db, self.live, interval=interval)
        else:
            self._listener = ChannelListener(self.db.url, STREAM_CHANNEL, self.live.wake_payload)
        await self._listener.start()

    @property
    def policy(self) -> Policy:
        config = self.settings.seedance
        return Policy(
            require_external_cost_consent=self.settings.billing.require_external_cost_consent,
            max_attempts=self.settings.worker.max_attempts,
            seedance_prices=self.seedance.prices if self.seedance else PriceBook({}, {}),
            seedance_enabled=self.seedance is not None,
            real_person_enabled=self.seedance is not None and self.seedance.materials is not None,
            real_person_default_group=config.real_person_group_id,
            max_queue_seconds=self.settings.worker.max_queue_seconds,
            credit_limit=self.settings.billing.credit_limit_minor,
            limits=self.limits,
        )

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self.seedance is not None:
            await self.seedance.ark.aclose()
        await close_engines(self.engines)
        await self.fetcher.aclose()
        await self.db.dispose()


async def build_runtime(settings: Settings, *, migrate: bool = True) -> Runtime:
    """Open the database (migrating it to head), storage and engines.

    Raises:
        MissingExtra: before anything is created, when a configured part's extra is missing.
        ConfigError: the database URL is wrong (the database or user does not exist…).
        DatabaseUnavailable: the database is out of reach (the caller may wait for it).
    """
    check_extras(settings)
    db = Database(settings.resolved_database_url)
    if db.is_sqlite:  # the default SQLite file lives there; otherwise made when first written
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    if migrate:
        from wfrun.db.migrate import upgrade  # Alembic: only when migrating

        try:
            await upgrade(db)
        except BaseException as exc:  # e.g. the database is unavailable: leave no pool behind
            await db.dispose()
            if isinstance(exc, Exception) and not isinstance(exc, DatabaseUnavailable):
                verdict = await probe(settings.resolved_database_url)
                if verdict.problem and not verdict.transient:
                    raise ConfigError(verdict.problem) from exc
            raise
    storage = await build_storage(settings)
    signer = UrlSigner(ensure_secret_key(settings))
    return Runtime(
        settings=settings,
        db=db,
        storage=storage,
        signer=signer,
        engines=build_engines(),
        fetcher=SafeFetcher(fetch_policy(settings.assets)),
        webhook_box=SecretBox(ensure_secret_key(settings)),
        webhook_policy=webhook_policy(settings.webhooks),
        seedance=build_seedance(settings, db, storage, signer),
        live=LiveSignal(poll_seconds=settings.live.fallback_poll_seconds),
        metrics=Metrics(),
    )


def ensure_secret_key(settings: Settings) -> str:
    """Return the signing key, creating and persisting one in ``data_dir`` on first use."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.write_text(key)
    path.chmod(0o600)
    return key


def check_extras(settings: Settings) -> None:
    """The optional SDKs the settings need are installed: boto3 for ``storage.backend = "s3"``
    (``wfrun[s3]``), Volcengine's Ark SDK when ``seedance.ark_api_key`` is set
    (``wfrun[seedance]``). Neither is imported otherwise.

    Raises:
        MissingExtra: naming the setting and the extra to install.
    """
    if settings.storage.backend == "s3":
        require_s3_sdk()
    if settings.seedance.ark_api_key:
        require_ark_sdk()


def price_book(config: SeedanceSettings) -> PriceBook:
    """Seedance prices from settings: ``model`` or ``model@resolution`` → CNY per M tokens."""
    models: dict[str, ModelPrice] = {}
    by_resolution: dict[tuple[str, str], ModelPrice] = {}
    for name, price in config.prices.items():
        entry = ModelPrice(
            per_million=parse_amount(price.per_million),
            per_million_with_video=parse_amount(price.per_million_with_video),
        )
        model, _, resolution = name.partition("@")
        if resolution:
            by_resolution[(model, resolution)] = entry
        else:
            models[model] = entry
    return PriceBook(models, by_resolution)


def build_seedance(
    settings: Settings, db: Database, storage: ObjectStore, signer: UrlSigner
) -> SeedanceDeps | None:
    config = settings.seedance
    if not config.ark_api_key:
        return None
    materials = None
    if config.access_key_id and config.secret_access_key:
        materials = MaterialRegistry(
            ControlPlane(
                host=config.control_host,
                scheme=config.control_scheme,
                region=config.region,
                access_key_id=config.access_key_id,
                secret_access_key=config.secret_access_key,
                project_name=config.project_name,
            ),
            poll_interval=min(config.poll_min_seconds, 1.0),
            ready_timeout=config.asset_ready_timeout_seconds,
        )
    return SeedanceDeps(
        db=db,
        storage=storage,
        ark=ArkGateway(
            base_url=config.ark_base_url,
            api_key=config.ark_api_key,
            timeout=config.request_timeout_seconds,
        ),
        links=Links(signer, storage, settings.public_origin, config.media_url_ttl_seconds),
        prices=price_book(config),
        settings=config,
        materials=materials,
        output_retention=timedelta(hours=settings.assets.output_retention_hours),
        signer=signer,
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


def webhook_policy(webhooks: WebhookSettings) -> FetchPolicy:
    """Webhook receivers obey the media fetcher's address rules, with their own allow-lists."""
    return FetchPolicy(
        timeout_seconds=webhooks.timeout_seconds,
        connect_timeout_seconds=min(10.0, webhooks.timeout_seconds),
        max_redirects=0,
        allow_hosts=frozenset(h.lower() for h in webhooks.allow_hosts),
        allow_networks=tuple(
            ipaddress.ip_network(n, strict=False) for n in webhooks.allow_networks
        ),
        user_agent="wfrun-webhooks/1",
    )
