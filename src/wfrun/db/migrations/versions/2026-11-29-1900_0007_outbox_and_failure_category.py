"""run outbox and failure categories

Why: every run state change is written, in the same transaction as the change, as one row of
``outbox_events``: the source the event stream, webhooks and metrics read, so none of them
invents events of its own. A run that ended badly now records its failure *category*
(``error_category``) instead of an HTTP status: only the API maps categories to statuses.
Existing statuses are translated to their categories.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_CATEGORY_OF_STATUS = {
    200: "cancelled",
    400: "invalid_input",
    413: "too_large",
    422: "unprocessable",
    500: "internal",
    503: "unavailable",
    504: "timeout",
}


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("previous_status", sa.String(length=16), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("data", _JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_outbox_events_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )
    op.create_index("ix_outbox_events_run_id", "outbox_events", ["run_id", "id"])
    op.create_index("ix_outbox_events_account_id", "outbox_events", ["account_id", "id"])
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_category", sa.String(length=16), nullable=True))
    runs = sa.table(
        "runs", sa.column("error_status", sa.Integer), sa.column("error_category", sa.String)
    )
    for status, category in _CATEGORY_OF_STATUS.items():
        op.execute(
            runs.update().where(runs.c.error_status == status).values(error_category=category)
        )
    op.execute(
        runs.update()
        .where(runs.c.error_status.is_not(None), runs.c.error_category.is_(None))
        .values(error_category="internal")
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("error_status")


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_status", sa.Integer(), nullable=True))
    runs = sa.table(
        "runs", sa.column("error_status", sa.Integer), sa.column("error_category", sa.String)
    )
    for status, category in _CATEGORY_OF_STATUS.items():
        op.execute(
            runs.update().where(runs.c.error_category == category).values(error_status=status)
        )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("error_category")
    op.drop_index("ix_outbox_events_account_id", table_name="outbox_events")
    op.drop_index("ix_outbox_events_run_id", table_name="outbox_events")
    op.drop_table("outbox_events")
