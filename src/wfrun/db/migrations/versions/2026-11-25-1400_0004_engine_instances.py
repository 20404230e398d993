"""engine instances

Why: the comfyui engine runs on a pool of registered ComfyUI servers; workers schedule runs onto
healthy instances with free capacity and matching labels, and a run records the instance it
was dispatched to (for cancel and re-attachment after a worker crash).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 12:08:55.038204
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "engine_instances",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column(
            "labels", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("capacity >= 1", name=op.f("ck_engine_instances_capacity_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engine_instances")),
        sa.UniqueConstraint("url", name=op.f("uq_engine_instances_url")),
    )
    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "required_labels",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            )
        )

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("instance_id", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("instance_id")

    with op.batch_alter_table("revisions", schema=None) as batch_op:
        batch_op.drop_column("required_labels")

    op.drop_table("engine_instances")
