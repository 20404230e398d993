"""account limits: per-account overrides of rate and run quotas, and shared rate counters

Why: an operator raises or lowers one account's request rate and run quotas
(``wfrun accounts limits``) over the server's ``limits.*`` defaults; every API process and
the claim query read them from ``account_limits``. ``rate_counters`` holds each API key's
cumulative request count, which every API process adds its own to a few times a second and
reads the others' from, so one key's rate holds across processes. ``ix_jobs_account_status``
serves counting an account's waiting and running jobs (the queued-run cap at submit, the
running-run cap in the claim).

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_limits",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("requests_per_second", sa.Float(), nullable=True),
        sa.Column("burst", sa.Integer(), nullable=True),
        sa.Column("max_queued_runs", sa.Integer(), nullable=True),
        sa.Column("max_running_runs", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_limits_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_limits")),
    )
    op.create_table(
        "rate_counters",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("consumed", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_rate_counters")),
    )
    op.create_index("ix_jobs_account_status", "jobs", ["account_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_jobs_account_status", table_name="jobs")
    op.drop_table("rate_counters")
    op.drop_table("account_limits")
