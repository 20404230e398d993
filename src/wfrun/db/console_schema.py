"""The console's tables (account roles, console users, invitations, login attempts), on
:data:`wfrun.db.schema.metadata` (registered when ``wfrun.db.console`` is imported, as the
webhook tables are by theirs)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from wfrun.db.schema import Id, UTCDateTime, metadata


def _ts(name: str, nullable: bool = False) -> Column[Any]:
    return Column(name, UTCDateTime(), nullable=nullable)


account_roles = Table(
    "account_roles",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), primary_key=True),
    Column("role", String(16), nullable=False),
    _ts("created_at"),
    CheckConstraint("role IN ('customer', 'operator')", name="role_known"),
)

console_users = Table(
    "console_users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False, index=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=True),
    _ts("created_at"),
    _ts("password_set_at", nullable=True),
    Column("session_epoch", Integer, nullable=False, server_default="0"),
)

console_invitations = Table(
    "console_invitations",
    metadata,
    Column("id", Id, primary_key=True),
    Column("user_id", Id, ForeignKey("console_users.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    _ts("created_at"),
    _ts("expires_at"),
    _ts("used_at", nullable=True),
)

console_login_attempts = Table(
    "console_login_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(320), nullable=True),
    Column("address", String(64), nullable=False),
    Column("succeeded", Boolean, nullable=False),
    _ts("attempted_at"),
    Index("ix_console_login_attempts_email_at", "email", "attempted_at"),
    Index("ix_console_login_attempts_address_at", "address", "attempted_at"),
)
