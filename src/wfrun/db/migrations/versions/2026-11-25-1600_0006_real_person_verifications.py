"""real-person verifications

Why: Ark checks every real-person upload's face against the verified person of the asset group
it goes into, so each account that sells real-person videos needs its own verified
(LivenessFace) group. A verification records the H5 liveness session an account's person goes
through and, once passed, the group their material is registered into.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 16:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "real_person_verifications",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("byted_token", sa.String(length=128), nullable=True),
        sa.Column("h5_link", sa.Text(), nullable=True),
        sa.Column("group_id", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_real_person_verifications_account_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_real_person_verifications")),
        sa.UniqueConstraint("byted_token", name=op.f("uq_real_person_verifications_byted_token")),
    )
    op.create_index(
        "ix_real_person_account",
        "real_person_verifications",
        ["account_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_real_person_account", table_name="real_person_verifications")
    op.drop_table("real_person_verifications")
