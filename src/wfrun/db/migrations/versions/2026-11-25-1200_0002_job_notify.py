"""Wake workers on PostgreSQL when a job becomes claimable.

Why: workers otherwise find new jobs only when they poll. A trigger sends ``NOTIFY wfrun_jobs``
when a job is inserted or handed back to the queue (PostgreSQL delivers it at commit and folds
duplicates within a transaction), so a waiting worker claims within milliseconds and the submit
path needs no extra statement. Claims and completions do not notify.
SQLite has no NOTIFY: there, in-process wake-ups and polling remain.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 12:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

CHANNEL = "wfrun_jobs"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"""
        CREATE FUNCTION wfrun_notify_jobs() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER wfrun_jobs_notify_insert AFTER INSERT ON jobs
        FOR EACH ROW WHEN (NEW.status = 'todo') EXECUTE FUNCTION wfrun_notify_jobs();
        """
    )
    op.execute(
        """
        CREATE TRIGGER wfrun_jobs_notify_requeue AFTER UPDATE OF status ON jobs
        FOR EACH ROW WHEN (NEW.status = 'todo' AND OLD.status <> 'todo')
        EXECUTE FUNCTION wfrun_notify_jobs();
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS wfrun_jobs_notify_requeue ON jobs")
    op.execute("DROP TRIGGER IF EXISTS wfrun_jobs_notify_insert ON jobs")
    op.execute("DROP FUNCTION IF EXISTS wfrun_notify_jobs()")
