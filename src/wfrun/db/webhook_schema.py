"""The webhook tables (endpoints, default secrets, run callbacks, the fan-out marker,
deliveries and their attempts), on :data:`wfrun.db.schema.metadata`; ``db/schema.py`` imports
this module so the metadata is always complete."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from wfrun.db.schema import Id, Json, UTCDateTime, metadata


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, UTCDateTime(), nullable=nullable)


webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("url", Text, nullable=False),
    Column("events", Json, nullable=False),
    Column("description", String(500), nullable=False, server_default=""),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    _ts("previous_secret_until", nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("disabled_reason", String(200), nullable=True),
    _ts("failing_since", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("deleted_at", nullable=True),
    Index("ix_webhook_endpoints_account_id", "account_id", "created_at"),
)

webhook_secrets = Table(
    "webhook_secrets",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("secret", Text, nullable=False),
    _ts("created_at"),
)

run_callbacks = Table(
    "run_callbacks",
    metadata,
    Column("run_id", Id, ForeignKey("runs.id"), primary_key=True),
    Column("url", Text, nullable=False),
)

webhook_fanouts = Table(
    "webhook_fanouts",
    metadata,
    Column("outbox_event_id", BigInteger, primary_key=True, autoincrement=False),
    _ts("fanned_at"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("outbox_event_id", BigInteger, nullable=True),
    Column("run_event_id", BigInteger, nullable=True),
    Column("target", String(64), nullable=False),
    Column("endpoint_id", Id, ForeignKey("webhook_endpoints.id"), nullable=True),
    Column("event_type", String(32), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("retry_step", Integer, nullable=False, server_default="0"),
    _ts("next_attempt_at"),
    _ts("lease_until", nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_latency_ms", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    _ts("delivered_at", nullable=True),
    _ts("created_at"),
    _ts("updated_at"),
    UniqueConstraint("outbox_event_id", "target", name="one_per_target"),
    UniqueConstraint("run_event_id", "target", name="one_progress_per_target"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_account_id", "account_id", "created_at"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("delivery_id", Id, ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    _ts("started_at"),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("response_excerpt", Text, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_webhook_attempts_delivery_id", "delivery_id", "id"),
)

webhook_cursors = Table(
    "webhook_cursors",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False),
)
