"""Console sign-in: account roles, console users, invitations and login attempts. Callers own
the transaction; nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, insert, select, update

from wfrun.db.console_schema import (
    account_roles,
    console_invitations,
    console_login_attempts,
    console_users,
)
from wfrun.db.database import Connection
from wfrun.db.dialect import insert_ignoring_conflict
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
    session_epoch: int
    """Bumped by sign-out and by setting the password: sessions of an older epoch are dead."""


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
    """Insert the role row, or change it (race-free: the primary key decides, no delete)."""
    statement = insert_ignoring_conflict(conn, account_roles, ["account_id"])
    await conn.execute(statement.values(account_id=account_id, role=role, created_at=now))
    await conn.execute(
        update(account_roles).where(account_roles.c.account_id == account_id).values(role=role)
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
) -> ConsoleUser:
    """Insert the user unless its email exists already (a concurrent invitation won: the
    unique email decides); the email's user either way, locked for the transaction (so
    concurrent invitations of one user take turns)."""
    statement = insert_ignoring_conflict(conn, console_users, ["email"])
    await conn.execute(
        statement.values(id=user_id, account_id=account_id, email=email, created_at=now)
    )
    query = select(console_users).where(console_users.c.email == email).with_for_update()
    user = record_or_none(ConsoleUser, (await conn.execute(query)).mappings().first())
    assert user is not None
    return user


async def set_password(conn: Connection, user_id: str, password_hash: str, now: datetime) -> None:
    """Store a new password hash; a new password also ends every session (a new epoch)."""
    await conn.execute(
        update(console_users)
        .where(console_users.c.id == user_id)
        .values(
            password_hash=password_hash,
            password_set_at=now,
            session_epoch=console_users.c.session_epoch + 1,
        )
    )


async def rehash_password(conn: Connection, user_id: str, old: str, new: str) -> None:
    """Replace the stored hash by a stronger one of the same password (sessions stay)."""
    await conn.execute(
        update(console_users)
        .where(console_users.c.id == user_id, console_users.c.password_hash == old)
        .values(password_hash=new)
    )


async def end_sessions(conn: Connection, user_id: str) -> None:
    """A new session epoch: every session cookie of the user is dead."""
    await conn.execute(
        update(console_users)
        .where(console_users.c.id == user_id)
        .values(session_epoch=console_users.c.session_epoch + 1)
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


async def retire_invitations(conn: Connection, user_id: str, now: datetime, *, keep: str) -> None:
    """Mark the user's other unused invitations used (only the newest link, ``keep``, or
    none once one was accepted, can set the password)."""
    await conn.execute(
        update(console_invitations)
        .where(
            console_invitations.c.user_id == user_id,
            console_invitations.c.used_at.is_(None),
            console_invitations.c.id != keep,
        )
        .values(used_at=now)
    )


async def lock_attempts(conn: Connection) -> None:
    """Serialise sign-in attempts (PostgreSQL: a transaction advisory lock; SQLite's write
    transaction already holds the database's write lock)."""
    if conn.dialect.name == "postgresql":
        await conn.execute(select(func.pg_advisory_xact_lock(_ATTEMPTS_LOCK)))


_ATTEMPTS_LOCK = 0x77667275_6C6F67  # "wfrulog"


async def record_attempt(
    conn: Connection,
    *,
    attempt_id: str,
    email: str | None,
    address: str,
    succeeded: bool,
    now: datetime,
) -> None:
    await conn.execute(
        insert(console_login_attempts).values(
            id=attempt_id, email=email, address=address, succeeded=succeeded, attempted_at=now
        )
    )


async def mark_succeeded(conn: Connection, attempt_id: str) -> None:
    await conn.execute(
        update(console_login_attempts)
        .where(console_login_attempts.c.id == attempt_id)
        .values(succeeded=True)
    )


async def prune_attempts(conn: Connection, before: datetime) -> None:
    """Forget login attempts older than ``before`` (they no longer count for any limit)."""
    await conn.execute(
        delete(console_login_attempts).where(console_login_attempts.c.attempted_at < before)
    )


@dataclass(frozen=True, slots=True)
class Failures:
    """Failed sign-ins within a window: how many, and the oldest one's time."""

    count: int
    oldest: datetime | None


async def failures_since(
    conn: Connection, since: datetime, *, email: str | None, address: str | None
) -> Failures:
    """Failed attempts since ``since`` matching the email and/or the address given."""
    c = console_login_attempts.c
    where = [c.attempted_at >= since, c.succeeded.is_(False)]
    if email is not None:
        where.append(c.email == email)
    if address is not None:
        where.append(c.address == address)
    query = select(func.count(), func.min(c.attempted_at)).where(and_(*where))
    count, oldest = (await conn.execute(query)).one()
    return Failures(int(count), oldest)


async def users_of(conn: Connection, account_id: str) -> list[ConsoleUser]:
    query = select(console_users).where(console_users.c.account_id == account_id)
    return records(ConsoleUser, (await conn.execute(query)).mappings())
