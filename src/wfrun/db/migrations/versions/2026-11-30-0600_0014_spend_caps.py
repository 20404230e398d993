"""spend caps: a run's max_cost and credit ceiling, per-key spend limits and their counters

Why (issue 16): the quote is not a ceiling. ``runs.max_cost`` is the caller's cap on a run;
``runs.credit_limit`` is how far below zero the operator let the account go when the run was
submitted (settlement clamps to both); ``runs.spend_window`` names the key's spend-limit period
the run was counted in, and ``runs.absorbed_over_limit`` what the run consumed beyond its
ceiling (the operator absorbs it). ``key_limits`` holds a key's spend limit (no row: no limit);
``key_spend`` what a limited key has frozen and spent per period.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("max_cost", sa.BigInteger(), nullable=True))
    op.add_column(
        "runs", sa.Column("credit_limit", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("runs", sa.Column("spend_window", sa.String(length=16), nullable=True))
    op.add_column("runs", sa.Column("absorbed_over_limit", sa.BigInteger(), nullable=True))
    op.create_table(
        "key_limits",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("spend_limit", sa.BigInteger(), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_limits_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_limits")),
    )
    op.create_table(
        "key_spend",
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("period_key", sa.String(length=16), nullable=False),
        sa.Column("frozen", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_key_spend_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("key_id", "period_key", name=op.f("pk_key_spend")),
    )


def downgrade() -> None:
    op.drop_table("key_spend")
    op.drop_table("key_limits")
    for column in ("absorbed_over_limit", "spend_window", "credit_limit", "max_cost"):
        op.execute(f"ALTER TABLE runs DROP COLUMN {column}")  # SQLite ≥ 3.35: in place (triggers)
