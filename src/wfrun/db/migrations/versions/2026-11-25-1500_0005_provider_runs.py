"""provider runs and model runs

Why: Seedance runs execute as Volcengine Ark tasks that live for minutes; the run records the
upstream task (id, status, reconciliation state, usage) so one worker can track thousands of
them in batches and a crashed worker's successor re-attaches instead of creating a second
billable task. Model runs (``/model-runs/*``) are runs of family ``model`` whose idempotency
is scoped to the API key, hence ``idempotency_scope`` in the idempotency constraint.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 15:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("idempotency_scope", sa.String(length=64), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("family", sa.String(length=16), server_default="workflow", nullable=False)
        )
        batch_op.add_column(sa.Column("provider_task_id", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("provider_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("provider_state", _JSON, nullable=True))
        batch_op.add_column(sa.Column("usage", _JSON, nullable=True))
        batch_op.create_unique_constraint(op.f("uq_runs_provider_task_id"), ["provider_task_id"])
        batch_op.drop_constraint("idempotency", type_="unique")
        batch_op.create_unique_constraint(
            "idempotency", ["account_id", "workflow_id", "idempotency_scope", "idempotency_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_constraint("idempotency", type_="unique")
        batch_op.create_unique_constraint(
            "idempotency", ["account_id", "workflow_id", "idempotency_key"]
        )
        batch_op.drop_constraint(op.f("uq_runs_provider_task_id"), type_="unique")
        batch_op.drop_column("usage")
        batch_op.drop_column("provider_state")
        batch_op.drop_column("provider_status")
        batch_op.drop_column("provider_task_id")
        batch_op.drop_column("family")
        batch_op.drop_column("idempotency_scope")
