"""console

Why: the web console (``/console/``) signs people in. An account gets a role (``customer`` by
default — no row — or ``operator``); a console user is an email with a scrypt password hash
belonging to one account, set through a one-time invitation whose token is stored hashed and
expires; ``session_epoch`` is bumped by sign-out and password changes so every older session
cookie dies; login attempts are recorded with their email and (grouped) address so sign-in can
be rate-limited across API processes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _ts(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "account_roles",
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint(
            "role IN ('customer', 'operator')", name=op.f("ck_account_roles_role_known")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_account_roles_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_roles")),
    )
    op.create_table(
        "console_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        _ts("created_at"),
        _ts("password_set_at", nullable=True),
        sa.Column("session_epoch", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_console_users_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_users")),
        sa.UniqueConstraint("email", name=op.f("uq_console_users_email")),
    )
    op.create_index(
        op.f("ix_console_users_account_id"), "console_users", ["account_id"], unique=False
    )
    op.create_table(
        "console_invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        _ts("created_at"),
        _ts("expires_at"),
        _ts("used_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["console_users.id"],
            name=op.f("fk_console_invitations_user_id_console_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_invitations_token_hash")),
    )
    op.create_index(
        op.f("ix_console_invitations_user_id"), "console_invitations", ["user_id"], unique=False
    )
    op.create_table(
        "console_login_attempts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        _ts("attempted_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_login_attempts")),
    )
    for column in ("email", "address"):
        op.create_index(
            f"ix_console_login_attempts_{column}_at",
            "console_login_attempts",
            [column, "attempted_at"],
            unique=False,
        )


def downgrade() -> None:
    for column in ("email", "address"):
        op.drop_index(f"ix_console_login_attempts_{column}_at", table_name="console_login_attempts")
    op.drop_table("console_login_attempts")
    op.drop_index(op.f("ix_console_invitations_user_id"), table_name="console_invitations")
    op.drop_table("console_invitations")
    op.drop_index(op.f("ix_console_users_account_id"), table_name="console_users")
    op.drop_table("console_users")
    op.drop_table("account_roles")
