"""read indexes: run lists, the queued run's ETA, the claim's order

Why (issue 17): at 1M runs of one account, ``run/list``'s count and page and a queued run's
ETA (the mean of the revision's recent successful runs) scanned ``runs``; the claim sorted the
due ``todo`` jobs. Each gets an index that answers it in order:

- ``ix_runs_account_family_created (account_id, family, created_at, id)``: the list's filter and
  its newest-first order (and its capped count, an index-only range).
- ``ix_runs_revision_status_terminal (revision_id, status, terminal_at)``: the ETA's last
  successful runs of a revision, newest first.
- ``ix_jobs_todo_order (fair_round, created_at, id) WHERE status = 'todo'``: the claim's
  ``ORDER BY fair_round, created_at, id`` over waiting jobs.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 06:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_runs_account_family_created", "runs", ["account_id", "family", "created_at", "id"]
    )
    op.create_index(
        "ix_runs_revision_status_terminal", "runs", ["revision_id", "status", "terminal_at"]
    )
    op.create_index(
        "ix_jobs_todo_order",
        "jobs",
        ["fair_round", "created_at", "id"],
        sqlite_where=sa.text("status = 'todo'"),
        postgresql_where=sa.text("status = 'todo'"),
    )


def downgrade() -> None:
    op.drop_index("ix_jobs_todo_order", table_name="jobs")
    op.drop_index("ix_runs_revision_status_terminal", table_name="runs")
    op.drop_index("ix_runs_account_family_created", table_name="runs")
