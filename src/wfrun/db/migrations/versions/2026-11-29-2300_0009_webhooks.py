"""webhooks: endpoints, per-run callbacks, deliveries and their attempt log

Why: run changes reach integrations as signed Standard Webhooks. Deliveries are filled from the
outbox by an idempotent fan-out (``webhook_fanouts`` marks each outbox row done, in the
transaction that inserts its deliveries; ``(outbox_event_id, target)`` is unique), so a worker
killed anywhere between a run change and its delivery loses no event and sends none twice
unasked. Every attempt is logged (``webhook_attempts``). Opt-in progress deliveries come from
``run_events`` progress rows past a cursor (``webhook_cursors``), one per 500 ms per run.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ID = sa.String(length=40)


def _ts(name: str, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}")
    )


def _endpoints() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", _JSON, nullable=False),
        sa.Column("description", sa.String(length=500), server_default="", nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("previous_secret", sa.Text(), nullable=True),
        _ts("previous_secret_until", nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        _ts("failing_since", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("deleted_at", nullable=True),
        _fk("webhook_endpoints", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        "ix_webhook_endpoints_account_id", "webhook_endpoints", ["account_id", "created_at"]
    )
    op.create_table(
        "webhook_secrets",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        _ts("created_at"),
        _fk("webhook_secrets", "account_id", "accounts"),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_webhook_secrets")),
    )
    op.create_table(
        "run_callbacks",
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        _fk("run_callbacks", "run_id", "runs"),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_callbacks")),
    )


def _deliveries() -> None:
    op.create_table(
        "webhook_fanouts",
        sa.Column("outbox_event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        _ts("fanned_at"),
        sa.PrimaryKeyConstraint("outbox_event_id", name=op.f("pk_webhook_fanouts")),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("outbox_event_id", sa.BigInteger(), nullable=True),
        sa.Column("run_event_id", sa.BigInteger(), nullable=True),
        sa.Column("target", sa.String(length=64), nullable=False),
        sa.Column("endpoint_id", _ID, nullable=True),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("retry_step", sa.Integer(), server_default="0", nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until", nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_latency_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _ts("delivered_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        _fk("webhook_deliveries", "account_id", "accounts"),
        _fk("webhook_deliveries", "run_id", "runs"),
        _fk("webhook_deliveries", "endpoint_id", "webhook_endpoints"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint("outbox_event_id", "target", name="one_per_target"),
        sa.UniqueConstraint("run_event_id", "target", name="one_progress_per_target"),
    )
    op.create_index(
        "ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index(
        "ix_webhook_deliveries_account_id", "webhook_deliveries", ["account_id", "created_at"]
    )


def _attempts() -> None:
    op.create_table(
        "webhook_attempts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("delivery_id", _ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _ts("started_at"),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _fk("webhook_attempts", "delivery_id", "webhook_deliveries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id", "id"])


def _cursors() -> None:
    op.create_table(
        "webhook_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_webhook_cursors")),
    )


def upgrade() -> None:
    _endpoints()
    _deliveries()
    _attempts()
    _cursors()


def downgrade() -> None:
    op.drop_table("webhook_cursors")
    op.drop_index("ix_webhook_attempts_delivery_id", table_name="webhook_attempts")
    op.drop_table("webhook_attempts")
    op.drop_index("ix_webhook_deliveries_account_id", table_name="webhook_deliveries")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_fanouts")
    op.drop_table("run_callbacks")
    op.drop_table("webhook_secrets")
    op.drop_index("ix_webhook_endpoints_account_id", table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
