"""operator adjustments: refunds of runs and archived workflows

Why: an operator refunds (part of) what a run was charged, and retires workflows. A refund is a
compensating ledger entry (kind ``refund``, revenue → available) that never edits the run's own
entries; a run may be refunded several times, up to its final amount, so each refund is one row
of ``refunds`` naming its run and its ledger entry (the ledger's ``(run_id, kind)`` uniqueness
stays for the run's own freeze and resolution). ``(run_id, memo)`` is unique: repeating a refund
with the same memo finds the first instead of paying twice. ``workflows.archived_at`` marks a
workflow the operator archived (unpublished, refused for new runs, hidden from lists).
``ledger_requests`` holds the one-time keys of top-ups and adjustments posted from the console's
forms: the key is the primary key, so a form posted twice credits once.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("memo", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_refunds_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name=op.f("fk_refunds_entry_id_ledger_entries")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_refunds_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_refunds_entry_id")),
        sa.UniqueConstraint("run_id", "memo", name="one_refund_per_memo"),
    )
    op.create_table(
        "ledger_requests",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_ledger_requests_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["ledger_entries.id"],
            name=op.f("fk_ledger_requests_entry_id_ledger_entries"),
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_ledger_requests")),
        sa.UniqueConstraint("entry_id", name=op.f("uq_ledger_requests_entry_id")),
    )
    op.add_column("workflows", sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE workflows DROP COLUMN archived_at")  # SQLite ≥ 3.35: in place
    op.drop_table("ledger_requests")
    op.drop_table("refunds")
