"""assets and retention

Why: uploads become first-class assets (owned, typed, expiring), runs record which assets they
reference so retention never deletes bytes a queued or running run still needs, and run outputs
get an expiry per the workflow's retention setting.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:52:52.826423
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("media_type", sa.String(length=16), nullable=False),
        sa.Column("mime_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), server_default="", nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_assets_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assets")),
    )
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assets_account_created", ["account_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_assets_expires", ["expires_at"], unique=False)

    op.create_table(
        "run_assets",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("asset_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["asset_id"], ["assets.id"], name=op.f("fk_run_assets_asset_id_assets")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_assets_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "asset_id", name=op.f("pk_run_assets")),
    )
    with op.batch_alter_table("run_assets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_run_assets_asset_id"), ["asset_id"], unique=False)

    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("output_retention_hours", sa.Integer(), nullable=True))

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("outputs_expire_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("outputs_deleted_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_runs_outputs_expire", ["outputs_expire_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_outputs_expire")
        batch_op.drop_column("outputs_deleted_at")
        batch_op.drop_column("outputs_expire_at")

    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_column("output_retention_hours")

    with op.batch_alter_table("run_assets", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_run_assets_asset_id"))

    op.drop_table("run_assets")
    with op.batch_alter_table("assets", schema=None) as batch_op:
        batch_op.drop_index("ix_assets_expires")
        batch_op.drop_index("ix_assets_account_created")

    op.drop_table("assets")
