"""queue lanes, fair rounds and queue deadlines

Why: claims, ``queue_position`` and the ETA must read one order (issue 11). Each job now
stores its *lane* (engine kind + required labels), its account and its *fair round*
(round-robin by account within the lane, fixed at enqueue); with ``created_at`` (the enqueue
time, which a deferral never changes) that is the whole order. ``start_by`` is the run's queue
deadline (``QUEUE_TIMEOUT``). A revision may lower the server's queue deadline
(``max_queue_seconds``).

On PostgreSQL a job leaving ``doing`` (a worker slot freed) and an instance becoming active and
healthy also ``NOTIFY wfrun_jobs``, so waiting workers claim at once instead of at their next
poll.

Open jobs are backfilled: lane and account from their run, a deadline one hour (the default
``WFRUN_WORKER__MAX_QUEUE_SECONDS``) after enqueue for runs still queued.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

CHANNEL = "wfrun_jobs"
_DEFAULT_QUEUE_SECONDS = 3600
_COLUMNS = ("lane", "account_id", "fair_round", "start_by")


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("lane", sa.String(length=255), server_default="", nullable=False)
    )
    op.add_column(
        "jobs", sa.Column("account_id", sa.String(length=40), server_default="", nullable=False)
    )
    op.add_column("jobs", sa.Column("fair_round", sa.Integer(), server_default="0", nullable=False))
    op.add_column("jobs", sa.Column("start_by", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_jobs_lane", "jobs", ["status", "lane", "fair_round", "created_at"])
    op.add_column("revisions", sa.Column("max_queue_seconds", sa.Integer(), nullable=True))
    _backfill()
    if op.get_bind().dialect.name == "postgresql":
        _create_triggers()


def _lane(engine_kind: str, labels: object) -> str:
    """``domain.lanes.lane_key`` as of this revision (a migration does not import the app)."""
    if isinstance(labels, str):
        labels = json.loads(labels)
    if not labels:
        return engine_kind
    return f"{engine_kind} {json.dumps(labels, sort_keys=True, separators=(',', ':'))}"


def _backfill() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT jobs.id, jobs.created_at, runs.account_id, runs.status,"
            " revisions.engine_kind, revisions.required_labels FROM jobs"
            " JOIN runs ON runs.id = jobs.run_id JOIN revisions ON revisions.id = runs.revision_id"
            " WHERE jobs.status IN ('todo', 'doing', 'tracking')"
        )
    ).all()
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.String),
        sa.column("lane", sa.String),
        sa.column("account_id", sa.String),
        sa.column("start_by", sa.DateTime(timezone=True)),
    )
    for job_id, created_at, account_id, run_status, kind, labels in rows:
        start_by = _deadline(created_at) if run_status == "queued" else None
        bind.execute(
            jobs.update()
            .where(jobs.c.id == job_id)
            .values(lane=_lane(kind, labels), account_id=account_id, start_by=start_by)
        )


def _deadline(created_at: object) -> datetime:
    """Enqueue time + the default deadline; naive UTC stays naive (SQLite), aware stays aware."""
    value = (
        created_at if isinstance(created_at, datetime) else datetime.fromisoformat(str(created_at))
    )
    return value + timedelta(seconds=_DEFAULT_QUEUE_SECONDS)


def _create_triggers() -> None:
    op.execute(
        """
        CREATE TRIGGER wfrun_jobs_notify_freed AFTER UPDATE OF status ON jobs
        FOR EACH ROW WHEN (OLD.status = 'doing' AND NEW.status <> 'doing')
        EXECUTE FUNCTION wfrun_notify_jobs();
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION wfrun_notify_instances() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$;
        """
    )
    op.execute(
        """
        CREATE TRIGGER wfrun_instances_notify_insert AFTER INSERT ON engine_instances
        FOR EACH ROW WHEN (NEW.healthy AND NEW.state = 'active')
        EXECUTE FUNCTION wfrun_notify_instances();
        """
    )
    op.execute(  # only a change: every successful probe rewrites ``healthy``
        """
        CREATE TRIGGER wfrun_instances_notify_usable AFTER UPDATE OF healthy, state
        ON engine_instances FOR EACH ROW
        WHEN (NEW.healthy AND NEW.state = 'active' AND NOT (OLD.healthy AND OLD.state = 'active'))
        EXECUTE FUNCTION wfrun_notify_instances();
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS wfrun_instances_notify_usable ON engine_instances")
        op.execute("DROP TRIGGER IF EXISTS wfrun_instances_notify_insert ON engine_instances")
        op.execute("DROP FUNCTION IF EXISTS wfrun_notify_instances()")
        op.execute("DROP TRIGGER IF EXISTS wfrun_jobs_notify_freed ON jobs")
    op.drop_index("ix_jobs_lane", table_name="jobs")
    for column in _COLUMNS:  # SQLite ≥ 3.35 drops a column in place (no table rebuild)
        op.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
    op.execute("ALTER TABLE revisions DROP COLUMN max_queue_seconds")
