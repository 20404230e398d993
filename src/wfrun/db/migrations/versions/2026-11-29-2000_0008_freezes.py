"""holds become freezes

Why: one concept, one name. The amount set aside at submit is a *freeze* on the wire
(``freeze_status``), in the domain (``FreezeStatus``) and in the ledger; its table was the only
place that called it a hold. The table is recreated under its name (constraint names follow
the table's, on both dialects) and its rows copied.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_COLUMNS = "id, run_id, account_id, amount, status, created_at, resolved_at"


def _create(name: str) -> None:
    op.create_table(
        name,
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount >= 0", name=op.f(f"ck_{name}_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f(f"fk_{name}_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f(f"fk_{name}_run_id_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
        sa.UniqueConstraint("run_id", name=op.f(f"uq_{name}_run_id")),
    )


def _move(source: str, target: str) -> None:
    _create(target)
    op.execute(f"INSERT INTO {target} ({_COLUMNS}) SELECT {_COLUMNS} FROM {source}")
    op.drop_table(source)


def upgrade() -> None:
    _move("holds", "freezes")


def downgrade() -> None:
    _move("freezes", "holds")
