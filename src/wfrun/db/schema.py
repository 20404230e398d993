"""The schema as SQLAlchemy Core tables. Migrations are the source of truth for the database;
a test asserts this metadata and the migration history agree. Money columns are BigInteger
counts of 1e-8 CNY.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from wfrun.db.schema_types import Id as Id  # noqa: PLC0414 (re-exported for table modules)
from wfrun.db.schema_types import Json as Json  # noqa: PLC0414
from wfrun.db.schema_types import Money as Money  # noqa: PLC0414
from wfrun.db.schema_types import UTCDateTime as UTCDateTime  # noqa: PLC0414
from wfrun.db.schema_types import metadata as metadata  # noqa: PLC0414


def _only(condition: str) -> dict[str, Any]:  # a partial index's condition, both dialects
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, UTCDateTime(), nullable=nullable)


accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("display_name", String(200), nullable=False),
    Column("currency", String(3), nullable=False, server_default="CNY"),
    Column("available", Money, nullable=False, server_default="0"),
    Column("frozen", Money, nullable=False, server_default="0"),
    _ts("created_at"),
    CheckConstraint("frozen >= 0", name="frozen_not_negative"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("name", String(200), nullable=False, server_default=""),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", Id, primary_key=True),
    Column("owner_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("slug", String(100), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("tags", Json, nullable=False),
    Column("visibility", String(16), nullable=False),
    Column("cover_url", String(2048), nullable=True),
    Column("published_revision_id", Id, nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("archived_at", nullable=True),
    UniqueConstraint("owner_id", "slug"),
)

revisions = Table(
    "revisions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("workflow_id", Id, ForeignKey("workflows.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("engine_kind", String(32), nullable=False),
    Column("payload", Json, nullable=False),
    Column("input_manifest", Json, nullable=False),
    Column("output_manifest", Json, nullable=False),
    Column("prices", Json, nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("output_retention_hours", Integer, nullable=True),
    Column("required_labels", Json, nullable=True),
    Column("package", Json, nullable=False),
    Column("max_queue_seconds", Integer, nullable=True),
    _ts("created_at"),
    UniqueConstraint("workflow_id", "number"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("workflow_id", Id, ForeignKey("workflows.id"), nullable=False),
    Column("revision_id", Id, ForeignKey("revisions.id"), nullable=False),
    Column("api_key_id", Id, nullable=True),
    Column("idempotency_key", String(255), nullable=False),
    Column("idempotency_scope", String(64), nullable=False, server_default=""),
    Column("family", String(16), nullable=False, server_default="workflow"),
    Column("request_fingerprint", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("inputs", Json, nullable=False),
    Column("accept_external_cost_risk", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, server_default="0"),
    Column("quote_amount", Money, nullable=False),
    Column("quote_external", Money, nullable=False, server_default="0"),
    Column("task_id", String(64), nullable=False),
    Column("prompt_id", String(64), nullable=False),
    Column("engine_prompt_id", String(64), nullable=True),
    Column("instance_id", Id, nullable=True),
    Column("provider_task_id", String(128), nullable=True, unique=True),
    Column("provider_status", String(16), nullable=True),
    Column("provider_state", Json, nullable=True),
    Column("usage", Json, nullable=True),
    Column("billing_run_id", String(64), nullable=False),
    Column("progress_percent", Integer, nullable=False, server_default="0"),
    Column("progress_snapshot", Json, nullable=True),
    Column("outputs", Json, nullable=True),
    Column("execution_ms", BigInteger, nullable=True),
    Column("compute_cost", Money, nullable=True),
    Column("external_model_cost", Money, nullable=True),
    Column("absorbed_external_cost", Money, nullable=True),
    Column("final_amount", Money, nullable=True),
    Column("released_amount", Money, nullable=True),
    Column("max_cost", Money, nullable=True),
    Column("credit_limit", Money, nullable=False, server_default="0"),
    Column("spend_window", String(16), nullable=True),
    Column("absorbed_over_limit", Money, nullable=True),
    Column("freeze_status", String(16), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("error_reason", String(500), nullable=True),
    Column("error_detail", Text, nullable=True),
    Column("error_category", String(16), nullable=True),
    _ts("cancel_requested_at", nullable=True),
    _ts("outputs_expire_at", nullable=True),
    _ts("outputs_deleted_at", nullable=True),
    _ts("created_at"),
    _ts("started_at", nullable=True),
    _ts("terminal_at", nullable=True),
    _ts("updated_at"),
    UniqueConstraint(
        "account_id", "workflow_id", "idempotency_scope", "idempotency_key", name="idempotency"
    ),
    Index("ix_runs_account_created", "account_id", "created_at"),
    Index("ix_runs_account_family_created", "account_id", "family", "created_at", "id"),
    Index("ix_runs_revision_status_terminal", "revision_id", "status", "terminal_at"),
    Index("ix_runs_status_created", "status", "created_at"),
    Index("ix_runs_outputs_expire", "outputs_expire_at"),
)

run_events = Table(
    "run_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    _ts("at"),
    Column("event_type", String(32), nullable=False),
    Column("level", String(8), nullable=False),
    Column("message", Text, nullable=False),
    Column("node_id", String(64), nullable=True),
    Column("progress_percent", Integer, nullable=True),
    Index("ix_run_events_run_id", "run_id", "id"),
)

outbox_events = Table(
    "outbox_events",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("account_id", Id, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("previous_status", String(16), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("data", Json, nullable=False),
    _ts("created_at"),
    Index("ix_outbox_events_run_id", "run_id", "id"),
    Index("ix_outbox_events_account_id", "account_id", "id"),
)

run_stream = Table(
    "run_stream",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("run_id", Id, nullable=False),
    Column("account_id", Id, nullable=False),
    Column("source", String(8), nullable=False),
    # source: ``change`` (an ``outbox_events`` row) or ``log`` (a ``run_events`` row)
    Column("source_id", BigInteger, nullable=False),
    Index("ix_run_stream_run_id", "run_id", "id"),
    Index("ix_run_stream_account_id", "account_id", "id"),
)
"""Every change and log line of every run, in one order (written by database triggers, see
migration 0009): what the live event stream reads."""

freezes = Table(
    "freezes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False, unique=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("amount", Money, nullable=False),
    Column("status", String(16), nullable=False),
    _ts("created_at"),
    _ts("resolved_at", nullable=True),
    CheckConstraint("amount >= 0", name="amount_not_negative"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=True),
    Column("memo", String(500), nullable=False, server_default=""),
    _ts("created_at"),
    UniqueConstraint("run_id", "kind", name="one_per_run"),
    Index("ix_ledger_entries_account_created", "account_id", "created_at"),
)

ledger_postings = Table(
    "ledger_postings",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("entry_id", Id, ForeignKey("ledger_entries.id"), nullable=False, index=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("bucket", String(16), nullable=False),
    Column("amount", Money, nullable=False),
    Index("ix_ledger_postings_account_bucket", "account_id", "bucket"),
)

refunds = Table(
    "refunds",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("entry_id", Id, ForeignKey("ledger_entries.id"), nullable=False, unique=True),
    Column("amount", Money, nullable=False),
    Column("memo", String(500), nullable=False),
    _ts("created_at"),
    CheckConstraint("amount > 0", name="amount_positive"),
    UniqueConstraint("run_id", "memo", name="one_refund_per_memo"),
)
"""Refunds of runs (operator side): each one a ``refund`` ledger entry; at most the run's final
amount in all, one per ``(run, memo)``."""

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("max_attempts", Integer, nullable=False),
    _ts("scheduled_at"),
    _ts("lease_until", nullable=True),
    Column("worker_id", String(40), nullable=True),
    Column("last_error", Text, nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    Column("lane", String(255), nullable=False, server_default=""),
    Column("account_id", Id, nullable=False, server_default=""),
    Column("fair_round", Integer, nullable=False, server_default="0"),
    _ts("start_by", nullable=True),
    Index("ix_jobs_claim", "status", "scheduled_at"),
    Index("ix_jobs_lane", "status", "lane", "fair_round", "created_at"),
    Index("ix_jobs_account_status", "account_id", "status"),
    Index("ix_jobs_todo_order", "fair_round", "created_at", "id", **_only("status = 'todo'")),
    Index(
        "uq_jobs_one_active_per_run", "run_id", unique=True, **_only("status IN ('todo', 'doing')")
    ),
)

workers = Table(
    "workers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("concurrency", Integer, nullable=False),
    _ts("started_at"),
    _ts("heartbeat_at"),
)

real_person_verifications = Table(
    "real_person_verifications",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("byted_token", String(128), nullable=True, unique=True),
    Column("h5_link", Text, nullable=True),
    Column("group_id", String(128), nullable=True),
    Column("error", Text, nullable=True),
    _ts("created_at"),
    _ts("completed_at", nullable=True),
    Index("ix_real_person_account", "account_id", "status"),
)

assets = Table(
    "assets",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("media_type", String(16), nullable=False),
    Column("mime_type", String(100), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("filename", String(255), nullable=False, server_default=""),
    Column("purpose", String(32), nullable=False),
    Column("storage_key", String(255), nullable=False),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_assets_account_created", "account_id", "created_at"),
    Index("ix_assets_expires", "expires_at"),
)

run_assets = Table(
    "run_assets",
    metadata,
    Column("run_id", Id, ForeignKey("runs.id"), primary_key=True),
    Column("asset_id", Id, ForeignKey("assets.id"), primary_key=True, index=True),
)

engine_instances = Table(
    "engine_instances",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("url", String(2048), nullable=False, unique=True),
    Column("capacity", Integer, nullable=False),
    Column("labels", Json, nullable=False),
    Column("state", String(16), nullable=False),
    Column("healthy", Boolean, nullable=False),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    _ts("last_check_at", nullable=True),
    _ts("created_at"),
    CheckConstraint("capacity >= 1", name="capacity_positive"),
)

# Tables kept in their own modules (registered on ``metadata`` when imported here).
