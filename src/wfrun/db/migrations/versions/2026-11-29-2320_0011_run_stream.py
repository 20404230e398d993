"""run stream: one ordered sequence of a run's visible events

Why: the live event stream (``GET /workflow/run/events``) and anything else that follows runs
as they happen must read a run's status changes (``outbox_events``) and its log lines
(``run_events``) in one order, under one id that only grows, and never see a smaller id
become visible after a larger one (or a client resuming from the larger id would miss it).
Database triggers append one ``run_stream`` row per inserted change or log line, so no code
path can forget it:

* SQLite has a single writer: an ``AFTER INSERT`` trigger numbers rows in commit order.
* PostgreSQL commits concurrently, so ids taken at insert time can become visible out of
  order. The trigger is a *deferred constraint trigger*: it runs at COMMIT, after everything
  else the transaction did, takes a transaction-level advisory lock (so event-writing commits
  number their rows one after the other, and the lock is released only once the commit is
  visible), appends the rows and sends ``NOTIFY wfrun_stream`` with the account id (one
  listener per API process wakes that account's streams). The lock is held only for the
  commit itself and the trigger touches no other row, so it cannot deadlock with the
  job → run → freeze → account order.

Existing changes and log lines are copied in, in time order.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 23:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

CHANNEL = "wfrun_stream"
LOCK_KEY = 7_240_611_209  # pg_advisory_xact_lock key of the stream's numbering

_BACKFILL = """
    INSERT INTO run_stream (run_id, account_id, source, source_id)
    SELECT run_id, account_id, source, source_id FROM (
        SELECT o.run_id, o.account_id, 'change' AS source, o.id AS source_id,
               o.created_at AS at, 1 AS rank
        FROM outbox_events o
        UNION ALL
        SELECT e.run_id, r.account_id, 'log', e.id, e.at, 0
        FROM run_events e JOIN runs r ON r.id = e.run_id
    ) merged ORDER BY at, rank, source_id
"""

_PG_FUNCTION = f"""
CREATE FUNCTION wfrun_stream_append() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    owner text;
BEGIN
    PERFORM pg_advisory_xact_lock({LOCK_KEY});
    IF TG_TABLE_NAME = 'outbox_events' THEN
        owner := NEW.account_id;
        INSERT INTO run_stream (run_id, account_id, source, source_id)
        VALUES (NEW.run_id, owner, 'change', NEW.id);
    ELSE
        SELECT account_id INTO owner FROM runs WHERE id = NEW.run_id;
        INSERT INTO run_stream (run_id, account_id, source, source_id)
        VALUES (NEW.run_id, owner, 'log', NEW.id);
    END IF;
    PERFORM pg_notify('{CHANNEL}', owner);
    RETURN NULL;
END $$;
"""

_SQLITE_TRIGGERS = {
    "wfrun_stream_change": """
        CREATE TRIGGER wfrun_stream_change AFTER INSERT ON outbox_events BEGIN
            INSERT INTO run_stream (run_id, account_id, source, source_id)
            VALUES (NEW.run_id, NEW.account_id, 'change', NEW.id);
        END""",
    "wfrun_stream_log": """
        CREATE TRIGGER wfrun_stream_log AFTER INSERT ON run_events BEGIN
            INSERT INTO run_stream (run_id, account_id, source, source_id)
            SELECT NEW.run_id, account_id, 'log', NEW.id FROM runs WHERE id = NEW.run_id;
        END""",
}
_PG_TRIGGERS = {"wfrun_stream_change": "outbox_events", "wfrun_stream_log": "run_events"}


def upgrade() -> None:
    op.create_table(
        "run_stream",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("source_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_stream")),
    )
    op.create_index("ix_run_stream_run_id", "run_stream", ["run_id", "id"])
    op.create_index("ix_run_stream_account_id", "run_stream", ["account_id", "id"])
    op.execute(_BACKFILL)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        for name, table in _PG_TRIGGERS.items():
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {name} AFTER INSERT ON {table} "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "EXECUTE FUNCTION wfrun_stream_append()"
            )
    else:
        for sql in _SQLITE_TRIGGERS.values():
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, table in _PG_TRIGGERS.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS wfrun_stream_append()")
    else:
        for name in _SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_index("ix_run_stream_account_id", table_name="run_stream")
    op.drop_index("ix_run_stream_run_id", table_name="run_stream")
    op.drop_table("run_stream")
