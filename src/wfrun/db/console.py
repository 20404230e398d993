"""Console sign-in: account roles, console users, invitations and login attempts. Callers own
the transaction; nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update

from wfrun.db.console_schema import (
    account_roles,
    console_invitations,
    console_login_attempts,
    console_users,
)
from wfrun.db.database import Connection
from wfrun.db.rows import record_or_none, records


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A ``console_users`` row: an email that signs in to one account's console."""

    id: str
    account_id: str
    email: str
    password_hash: str | None
    created_at: datetime
    password_set_at: datetime | None


@dataclass(frozen=True, slots=True)
class Invitation:
    """A ``console_invitations`` row (the token itself is never stored, only its hash)."""

    id: str
    user_id: str
    token_hash: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None


async def role_of(conn: Connection, account_id: str) -> str:
    """``operator`` or ``customer`` (an account without a role row is a customer)."""
    query = select(account_roles.c.role).where(account_roles.c.account_id == account_id)
    return str((await conn.execute(query)).scalar_one_or_none() or "customer")


async def set_role(conn: Connection, account_id: str, role: str, now: datetime) -> None:
    await conn.execute(delete(account_roles).where(account_roles.c.account_id == account_id))
    await conn.execute(
        insert(account_roles).values(account_id=account_id, role=role, created_at=now)
    )


async def operator_ids(conn: Connection) -> set[str]:
    query = select(account_roles.c.account_id).where(account_roles.c.role == "operator")
    return {str(v) for v in (await conn.execute(query)).scalars()}


async def find_user_by_email(conn: Connection, email: str) -> ConsoleUser | None:
    query = select(console_users).where(console_users.c.email == email)
    return record_or_none(ConsoleUser, (await conn.execute(query)).mappings().first())


async def find_user(conn: Connection, user_id: str) -> ConsoleUser | None:
    query = select(console_users).where(console_users.c.id == user_id)
    return record_or_none(ConsoleUser, (await conn.execute(query)).mappings().first())


async def insert_user(
    conn: Connection, *, user_id: str, account_id: str, email: str, now: datetime
) -> None:
    await conn.execute(
        insert(console_users).values(id=user_id, account_id=account_id, email=email, created_at=now)
    )


async def set_password(conn: Connection, user_id: str, password_hash: str, now: datetime) -> None:
    await conn.execute(
        update(console_users)
        .where(console_users.c.id == user_id)
        .values(password_hash=password_hash, password_set_at=now)
    )


async def insert_invitation(conn: Connection, invitation: Invitation) -> None:
    await conn.execute(
        insert(console_invitations).values(
            id=invitation.id,
            user_id=invitation.user_id,
            token_hash=invitation.token_hash,
            created_at=invitation.created_at,
            expires_at=invitation.expires_at,
            used_at=None,
        )
    )


async def find_invitation(conn: Connection, token_hash: str) -> Invitation | None:
    query = select(console_invitations).where(console_invitations.c.token_hash == token_hash)
    return record_or_none(Invitation, (await conn.execute(query)).mappings().first())


async def use_invitation(conn: Connection, invitation_id: str, now: datetime) -> bool:
    """Mark the invitation used; False when it already was (first use wins)."""
    result = await conn.execute(
        update(console_invitations)
        .where(console_invitations.c.id == invitation_id, console_invitations.c.used_at.is_(None))
        .values(used_at=now)
    )
    return result.rowcount == 1


async def record_attempt(
    conn: Connection, *, attempt_id: str, subject: str, succeeded: bool, now: datetime
) -> None:
    await conn.execute(
        insert(console_login_attempts).values(
            id=attempt_id, subject=subject, succeeded=succeeded, attempted_at=now
        )
    )


async def prune_attempts(conn: Connection, before: datetime) -> None:
    """Forget login attempts older than ``before`` (they no longer count for any limit)."""
    await conn.execute(
        delete(console_login_attempts).where(console_login_attempts.c.attempted_at < before)
    )


async def failed_attempts_since(conn: Connection, subject: str, since: datetime) -> int:
    query = select(func.count()).where(
        console_login_attempts.c.subject == subject,
        console_login_attempts.c.attempted_at >= since,
        console_login_attempts.c.succeeded.is_(False),
    )
    return int((await conn.execute(query)).scalar_one())


async def oldest_failure_since(conn: Connection, subject: str, since: datetime) -> datetime | None:
    query = select(func.min(console_login_attempts.c.attempted_at)).where(
        console_login_attempts.c.subject == subject,
        console_login_attempts.c.attempted_at >= since,
        console_login_attempts.c.succeeded.is_(False),
    )
    value: datetime | None = (await conn.execute(query)).scalar_one_or_none()
    return value  # min() keeps the column's type: an aware UTC datetime


async def users_of(conn: Connection, account_id: str) -> list[ConsoleUser]:
    query = select(console_users).where(console_users.c.account_id == account_id)
    return records(ConsoleUser, (await conn.execute(query)).mappings())
