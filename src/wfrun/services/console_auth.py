"""Console sign-in: roles, invitations, passwords (scrypt) and rate-limited login.

A console user is an email belonging to one account. An operator invites it: a one-time token
(stored as its SHA-256, expiring) lets the holder set a password. Login attempts are recorded
per email and client address; too many failures in the window refuse further tries with 429
until the oldest failure leaves the window. Sessions themselves live in a signed cookie (the
console's ``web.session``); this module only says who a session is.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from wfrun.clock import utcnow
from wfrun.db import accounts as accounts_db
from wfrun.db import console as console_db
from wfrun.db.console import ConsoleUser
from wfrun.db.database import Database
from wfrun.errors import InvalidParameter, TooManyRequests, Unauthenticated
from wfrun.services.accounts import Principal, authenticate

ROLES = ("customer", "operator")
MIN_PASSWORD = 8
ATTEMPTS_KEPT = timedelta(days=1)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="


@dataclass(frozen=True)
class Identity:
    """Who a console session is: the principal services act as, and the account's role."""

    principal: Principal
    role: str
    email: str | None
    """The console user's email; None for a session opened with an API key."""

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class Invite:
    user_id: str
    email: str
    token: str
    """Shown once (in the link); only its hash is stored."""
    expires_at: datetime


@dataclass(frozen=True)
class LoginLimit:
    """At most ``attempts`` failed sign-ins per email and address within ``window`` (which
    must stay within :data:`ATTEMPTS_KEPT`)."""

    attempts: int = 5
    window: timedelta = timedelta(minutes=15)


def invite_path(token: str) -> str:
    """Where an invitation's link points, under the server's base URL."""
    return f"/console/invite/{token}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalise_email(email: str) -> str:
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or len(value) > 320 or " " in value:
        raise InvalidParameter(f"email: not an email address: {email[:80]!r}")
    return value


# ---- roles -------------------------------------------------------------------------------------


async def set_role(db: Database, account_id: str, role: str) -> None:
    if role not in ROLES:
        raise InvalidParameter(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    async with db.transaction(write=True) as conn:
        await accounts_db.get_account(conn, account_id)
        await console_db.set_role(conn, account_id, role, utcnow())


async def role_of(db: Database, account_id: str) -> str:
    async with db.transaction() as conn:
        return await console_db.role_of(conn, account_id)


async def operator_ids(db: Database) -> set[str]:
    async with db.transaction() as conn:
        return await console_db.operator_ids(conn)


# ---- invitations -------------------------------------------------------------------------------


async def invite(db: Database, *, account_id: str, email: str, ttl: timedelta) -> Invite:
    """A one-time link token for ``email`` to set the password of its console user on
    ``account_id`` (created on first invitation).

    Raises:
        AccountNotFound: no such account.
        InvalidParameter: a bad email, or one already signing in to another account.
    """
    address = normalise_email(email)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await accounts_db.get_account(conn, account_id)
        user = await console_db.find_user_by_email(conn, address)
        if user is None:
            user_id = f"cuser_{secrets.token_hex(10)}"
            await console_db.insert_user(
                conn, user_id=user_id, account_id=account_id, email=address, now=now
            )
        elif user.account_id != account_id:
            raise InvalidParameter(f"email: {address} already signs in to another account")
        else:
            user_id = user.id
        invitation = console_db.Invitation(
            f"cinv_{secrets.token_hex(10)}", user_id, token_hash(token), now, now + ttl, None
        )
        await console_db.insert_invitation(conn, invitation)
    return Invite(user_id, address, token, invitation.expires_at)


async def invitation_email(db: Database, token: str) -> str:
    """The email an unused, unexpired invitation is for.

    Raises:
        InvalidParameter: unknown, used or expired.
    """
    async with db.transaction() as conn:
        invitation = await console_db.find_invitation(conn, token_hash(token))
        _check_usable(invitation, utcnow())
        assert invitation is not None
        user = await console_db.find_user(conn, invitation.user_id)
    assert user is not None, "an invitation's user exists (foreign key)"
    return user.email


def _check_usable(invitation: console_db.Invitation | None, now: datetime) -> None:
    if invitation is None:
        raise InvalidParameter("invitation: this link is not valid; ask for a new one")
    if invitation.used_at is not None:
        raise InvalidParameter("invitation: this link was already used; ask for a new one")
    if invitation.expires_at <= now:
        raise InvalidParameter("invitation: this link has expired; ask for a new one")


async def accept_invitation(db: Database, token: str, password: str) -> ConsoleUser:
    """Set the password through an invitation, which is then used up (first use wins)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidParameter(f"password: at least {MIN_PASSWORD} characters")
    hashed = await asyncio.to_thread(hash_password, password)
    now = utcnow()
    async with db.transaction(write=True) as conn:
        invitation = await console_db.find_invitation(conn, token_hash(token))
        _check_usable(invitation, now)
        assert invitation is not None
        if not await console_db.use_invitation(conn, invitation.id, now):
            raise InvalidParameter("invitation: this link was already used; ask for a new one")
        await console_db.set_password(conn, invitation.user_id, hashed, now)
        user = await console_db.find_user(conn, invitation.user_id)
    assert user is not None
    return user


# ---- sign-in -----------------------------------------------------------------------------------


async def _refuse_if_limited(db: Database, subject: str, limit: LoginLimit) -> None:
    now = utcnow()
    since = now - limit.window
    async with db.transaction() as conn:
        failures = await console_db.failed_attempts_since(conn, subject, since)
        oldest = await console_db.oldest_failure_since(conn, subject, since)
    if failures >= limit.attempts and oldest is not None:
        wait = max(1, int((oldest + limit.window - now).total_seconds()) + 1)
        raise TooManyRequests(f"too many failed sign-ins; try again in {wait} seconds")


async def _record(db: Database, subject: str, succeeded: bool) -> None:
    """Record an attempt; attempts older than a day are dropped on the way (no limit looks
    that far back), so the table stays small."""
    attempt_id, now = f"clog_{secrets.token_hex(12)}", utcnow()
    async with db.transaction(write=True) as conn:
        await console_db.prune_attempts(conn, now - ATTEMPTS_KEPT)
        await console_db.record_attempt(
            conn, attempt_id=attempt_id, subject=subject, succeeded=succeeded, now=now
        )


async def sign_in(
    db: Database, *, email: str, password: str, address: str, limit: LoginLimit
) -> Identity:
    """The identity behind an email and password.

    Raises:
        TooManyRequests: ``limit.attempts`` failures for this email and address in the window.
        Unauthenticated: wrong email or password (the same words either way).
    """
    subject = f"{email.strip().lower()[:320]}|{address}"
    await _refuse_if_limited(db, subject, limit)
    async with db.transaction() as conn:
        user = await console_db.find_user_by_email(conn, email.strip().lower())
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    matches = await asyncio.to_thread(verify_password, password, stored)
    ok = user is not None and user.password_hash is not None and matches
    await _record(db, subject, ok)
    if not ok or user is None:
        raise Unauthenticated("the email or password is not right")
    return await user_identity(db, user.id)


async def sign_in_with_key(
    db: Database, *, secret: str, address: str, limit: LoginLimit
) -> Identity:
    """The identity behind an API key (rate-limited per address like passwords)."""
    subject = f"api-key|{address}"
    await _refuse_if_limited(db, subject, limit)
    try:
        principal = await authenticate(db, secret.strip())
    except Unauthenticated:
        await _record(db, subject, False)
        raise
    await _record(db, subject, True)
    return Identity(principal, await role_of(db, principal.account_id), None)


async def user_identity(db: Database, user_id: str) -> Identity:
    """The identity of a console user's session.

    Raises:
        Unauthenticated: the user no longer exists or has no password.
    """
    async with db.transaction() as conn:
        user = await console_db.find_user(conn, user_id)
        if user is None or user.password_hash is None:
            raise Unauthenticated("the session's user no longer exists; sign in again")
        account = await accounts_db.get_account(conn, user.account_id)
        role = await console_db.role_of(conn, user.account_id)
    principal = Principal(account.id, user.id, account.display_name)
    return Identity(principal, role, user.email)


async def key_identity(db: Database, key_id: str) -> Identity:
    """The identity of a session opened with an API key (still active)."""
    async with db.transaction() as conn:
        key = await accounts_db.get_api_key(conn, key_id)
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("the API key of this session was revoked; sign in again")
        account = await accounts_db.get_account(conn, key.account_id)
        role = await console_db.role_of(conn, key.account_id)
    return Identity(Principal(account.id, key.id, account.display_name), role, None)
