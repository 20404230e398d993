"""Settings: built once at the composition root and passed down; never imported as a global.

Sources, highest priority first: explicit keyword arguments, ``WFRUN_*`` environment variables
(nested groups with ``__``, e.g. ``WFRUN_WORKER__LEASE_SECONDS``), the TOML file named by
``WFRUN_CONFIG``, then the defaults below. :func:`load_settings` (every entrypoint) refuses
unknown names, a missing config file, bad TOML and bad values with one
:class:`~wfrun.errors.ConfigError` line (``wfrun.config_sources``); fields marked
``json_schema_extra=SECRET`` (or ``URL_PASSWORD``) are masked by ``wfrun config show``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from wfrun.config_limits import LimitsSettings as LimitsSettings  # noqa: PLC0414
from wfrun.config_seedance import SeedancePrice as SeedancePrice  # noqa: PLC0414 (re-export)
from wfrun.config_seedance import SeedanceSettings as SeedanceSettings  # noqa: PLC0414
from wfrun.config_sources import (
    CONFIG_VARIABLE,
    SECRET,
    URL_PASSWORD,
    Sources,
    database_scheme_problem,
    gather,
    masked_paths,
)
from wfrun.domain.money import parse_amount
from wfrun.errors import ConfigError


class WorkerSettings(BaseModel):
    """How workers claim and keep jobs."""

    concurrency: int = Field(4, ge=1, le=256, description="Jobs one worker process runs at once.")
    lease_seconds: float = Field(
        30.0, gt=0, description="A claimed job is re-claimable this long after the last heartbeat."
    )
    poll_interval: float = Field(
        0.5, gt=0, description="Seconds between queue polls when nothing woke the worker."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Claims of one job before its run is failed and released."
    )
    probe_interval: float = Field(
        10.0, gt=0, description="Seconds between health probes of engine instances."
    )
    max_queue_seconds: float = Field(
        3600.0,
        gt=0,
        description=(
            "A run not started this long after its submit fails QUEUE_TIMEOUT with its whole "
            "freeze released (a package's max_queue_seconds may lower it)."
        ),
    )
    queue_sweep_interval: float = Field(
        1.0,
        gt=0,
        description=(
            "Seconds between a worker's sweeps of the queue: runs past their queue deadline "
            "are failed, and a run nothing can serve gets a log line saying why."
        ),
    )
    retry_delay_seconds: float = Field(
        5.0, ge=0, description="Wait before re-trying a run after a transient engine failure."
    )
    busy_delay_seconds: float = Field(
        10.0,
        ge=0,
        description=(
            "Wait before dispatching again when an engine said it is busy (e.g. Ark's 429); "
            "such waits use no attempt and end at the run's time limit."
        ),
    )
    drain_seconds: float = Field(
        30.0,
        ge=0,
        description=(
            "On SIGTERM a worker stops claiming at once and lets its runs in flight finish for "
            "up to this long, then hands the rest back to the queue (another worker takes "
            "them at once); a second SIGTERM hands them back immediately."
        ),
    )


class ApiSettings(BaseModel):
    """The HTTP edge: what a request may weigh, and what a refusal advises."""

    max_json_bytes: int = Field(
        1024 * 1024,
        ge=1,
        description=(
            "Largest request body of every endpoint but uploads (those take "
            "assets.max_upload_bytes); a larger one is a 413, judged from Content-Length or "
            "while it streams, before it is parsed or the caller authenticated."
        ),
    )
    retry_after_seconds: int = Field(
        5,
        ge=1,
        description="Retry-After (seconds) of every 503 (unavailable) and 429 (too many) answer.",
    )
    ready_timeout_seconds: float = Field(
        2.0, gt=0, description="/readyz gives each part (database, storage) this long to answer."
    )


class LiveSettings(BaseModel):
    """Live runs: event streams and ``Prefer: wait`` (how fast changes reach them, limits)."""

    keepalive_seconds: float = Field(
        15.0, gt=0, description="A ': keepalive' comment on an idle event stream this often."
    )
    poll_interval: float = Field(
        0.025,
        gt=0,
        description=(
            "SQLite: how often each API process looks for run changes other processes made "
            "(one query, whatever the number of streams); changes made in the same process, "
            "and on PostgreSQL every change (NOTIFY), wake waiters at once."
        ),
    )
    fallback_poll_seconds: float = Field(
        2.0,
        gt=0,
        description=(
            "Every waiting stream or submit looks again this often even without a wake-up "
            "(covers a lost LISTEN connection)."
        ),
    )
    max_streams_per_key: int = Field(
        20, ge=1, description="Open event streams one API key may hold per API process (429)."
    )
    page_size: int = Field(
        100, ge=1, le=10_000, description="Events a stream reads from the database at once."
    )
    send_timeout_seconds: float = Field(
        30.0, gt=0, description="A stream whose client reads nothing for this long is closed."
    )


class BillingSettings(BaseModel):
    """Operator policy for money."""

    require_external_cost_consent: bool = Field(
        False,
        description=(
            "When true, submitting a workflow that may incur external model cost without "
            "accept_external_cost_risk=true is a 400 EXTERNAL_COST_RISK_NOT_ACCEPTED."
        ),
    )
    credit_limit: str = Field(
        "0",
        description=(
            "How far below zero (yuan, e.g. 5.00) a run may take an account's balance; a run "
            "reaching it is stopped and settled there (COST_LIMIT_REACHED)."
        ),
    )

    @field_validator("credit_limit")
    @classmethod
    def _amount(cls, value: str) -> str:
        if parse_amount(value) < 0:
            raise ValueError("must not be negative")
        return value

    @property
    def credit_limit_minor(self) -> int:
        return parse_amount(self.credit_limit)


class StorageSettings(BaseModel):
    """Where assets and outputs are kept."""

    backend: Literal["local", "s3"] = Field("local", description="local directory or S3.")
    s3_bucket: str = Field("", description="S3 bucket (backend=s3).")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible endpoint; None = AWS.")
    s3_region: str = Field("us-east-1", description="S3 region.")
    s3_prefix: str = Field("", description="Key prefix inside the bucket.")
    s3_access_key_id: str | None = Field(
        None, description="S3 access key id.", json_schema_extra=SECRET
    )
    s3_secret_access_key: str | None = Field(
        None, description="S3 secret access key.", json_schema_extra=SECRET
    )
    s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        "path", description="S3 addressing style."
    )
    s3_create_bucket: bool = Field(False, description="Create the bucket on start if missing.")


class AssetSettings(BaseModel):
    """Uploads, media fetching and retention."""

    max_upload_bytes: int = Field(100 * 1024 * 1024, ge=1, description="Largest upload.")
    default_ttl_hours: int = Field(48, ge=1, description="Asset lifetime when none is asked.")
    max_ttl_hours: int = Field(24 * 30, ge=1, description="Longest asset lifetime allowed.")
    output_retention_hours: int = Field(
        24 * 7, ge=1, description="How long run outputs are kept (a workflow may set its own)."
    )
    sweep_interval_seconds: float = Field(
        300.0, gt=0, description="How often workers delete expired assets and outputs."
    )
    fetch_max_bytes: int = Field(100 * 1024 * 1024, ge=1, description="Largest fetched URL.")
    fetch_timeout_seconds: float = Field(60.0, gt=0, description="Time limit per URL fetch.")
    fetch_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hostnames exempt from the private-address check (e.g. your own CDN).",
    )
    fetch_allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDR networks exempt from the private-address check (default: none).",
    )


class WebhookSettings(BaseModel):
    """Webhook delivery (Standard Webhooks): where receivers may live, and how hard to try."""

    allow_hosts: list[str] = Field(
        default_factory=list,
        description="Receiver hostnames exempt from the private-address check.",
    )
    allow_networks: list[str] = Field(
        default_factory=list,
        description="CIDR networks where receivers may live although private (default: none).",
    )
    timeout_seconds: float = Field(10.0, gt=0, description="Time limit of one delivery attempt.")
    poll_interval: float = Field(
        0.2, gt=0, description="Seconds between looks at the outbox and the due deliveries."
    )
    gather_seconds: float = Field(
        0.1,
        ge=0,
        description="After a run change wakes the delivery loop, it waits this long before it "
        "looks, so the changes close behind it are fanned out in the same round.",
    )
    concurrency: int = Field(
        16, ge=1, le=1024, description="Deliveries one worker process sends at once."
    )
    lease_seconds: float = Field(
        60.0, gt=0, description="A claimed delivery is re-claimable this long after its claim."
    )
    retry_schedule_seconds: list[float] = Field(
        default_factory=lambda: [5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
        description="Waits before each retry of a failed delivery; when spent, it failed.",
    )
    retry_jitter: float = Field(
        0.1, ge=0, le=1, description="Each wait is stretched by a random 0..jitter fraction."
    )
    disable_after_seconds: float = Field(
        5 * 86400.0, gt=0, description="An endpoint failing this long without success is disabled."
    )


class MetricsSettings(BaseModel):
    """/metrics (Prometheus text; docs/operating.md)."""

    port: int | None = Field(
        None, ge=0, le=65535, description="Serve /metrics on this port, not the API's own."
    )
    host: str = Field("127.0.0.1", description="Bind address of the metrics port.")
    scrape_timeout_seconds: float = Field(
        2.0, gt=0, description="A scrape's database queries give up after this long."
    )


class LogSettings(BaseModel):
    """What the process logs to stderr, and how."""

    format: Literal["auto", "json", "console"] = Field(
        "auto", description="json lines, readable console lines, or auto: console on a terminal."
    )
    level: str = Field(
        "INFO", pattern="(?i)^(debug|info|warning|error)$", description="Lowest level written."
    )


class Settings(BaseSettings):
    """Everything wfrun needs to run; one instance per process."""

    model_config = SettingsConfigDict(
        env_prefix="WFRUN_", env_nested_delimiter="__", extra="ignore"
    )

    data_dir: Path = Field(Path(".wfrun"), description="Directory for the SQLite file and files.")
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy-style URL: sqlite:///path or postgresql://user@host/db. "
            "Default: a SQLite file in data_dir."
        ),
        json_schema_extra=URL_PASSWORD,
    )
    storage_dir: Path | None = Field(
        None, description="Local object storage; default data_dir/files."
    )
    host: str = Field("127.0.0.1", description="Bind address of the HTTP API.")
    port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP API.")
    public_base_url: str | None = Field(
        None, description="Base URL used in signed links; default: taken from each request."
    )
    secret_key: str | None = Field(
        None,
        description="HMAC key for signed URLs; default: generated once and kept in data_dir.",
        json_schema_extra=SECRET,
    )
    signed_url_ttl_seconds: int = Field(3600, ge=1, description="Lifetime of a signed file link.")
    seed_demo: bool | None = Field(
        None,
        description=(
            "Seed the demo operator, customer (100 CNY), key and workflow into an empty "
            "database on `wfrun serve`: unset = on SQLite only, never on PostgreSQL; "
            "`serve --demo`/`--no-demo` decide for one start."
        ),
    )
    api: ApiSettings = Field(default_factory=ApiSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    assets: AssetSettings = Field(default_factory=AssetSettings)
    seedance: SeedanceSettings = Field(default_factory=SeedanceSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    _sources: Sources = PrivateAttr(default_factory=Sources)

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        problem = database_scheme_problem(url)
        if problem:
            raise ValueError(problem)
        return url

    @property
    def sources(self) -> Sources:
        """Where each value came from (:func:`load_settings` fills it; else all defaults)."""
        return self._sources

    log: LogSettings = Field(default_factory=LogSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_VARIABLE)
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @property
    def public_origin(self) -> str:
        """Where links handed to others (Ark, invitations) point: ``public_base_url``, else
        the API's own bind address (only right when they can reach it)."""
        return (self.public_base_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to ``data_dir/wfrun.db``."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'wfrun.db').resolve()}"

    @property
    def resolved_storage_dir(self) -> Path:
        """Where the local object store keeps files."""
        return (self.storage_dir or self.data_dir / "files").resolve()


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment and config file, explicit overrides on top.

    Raises:
        ConfigError: an unknown ``WFRUN_*`` variable or TOML key, a missing or unreadable
            config file, bad TOML, or a value the model refuses (one line naming its source).
    """
    sources = gather(Settings, os.environ, overrides)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(sources.explain(exc, hide=masked_paths(Settings))) from None
    except SettingsError as exc:
        raise ConfigError(f"{exc}: lists and groups take JSON in a variable") from None
    settings._sources = sources
    return settings
