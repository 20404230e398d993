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
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from wfrun.clock import utcnow
from wfrun.db import accounts as accounts_db
from wfrun.db import console as console_db
from wfrun.db import spend as spend_db
from wfrun.db.console import ConsoleUser
from wfrun.db.database import Database
from wfrun.errors import InvalidParameter, TooManyRequests, Unauthenticated
from wfrun.services.accounts import Principal, authenticate

ROLES = ("customer", "operator")
MIN_PASSWORD = 8
ATTEMPTS_KEPT = timedelta(days=1)
INVITE_TTL = timedelta(hours=72)
"""How long an invitation link works (the CLI's ``--hours`` default and the console's)."""
_SCRYPT = {"n": 2**17, "r": 8, "p": 1}
_MAXMEM = 2**28  # scrypt needs 128 * r * n bytes (128 MiB here); the default cap is 32 MiB
_DUMMY_HASH = "scrypt$131072$8$1$AAAAAAAAAAAAAAAAAAAAAA==$" + "A" * 43 + "="


@dataclass(frozen=True)
class Identity:
    """Who a console session is: the principal services act as, and the account's role."""

    principal: Principal
    role: str
    email: str | None
    """The console user's email; None for a session opened with an API key."""
    epoch: int = 0
    """The user's session epoch when this identity was read (0 for a key session)."""

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    @property
    def via_key(self) -> bool:
        """A session opened with an API key: it may not manage keys or webhook endpoints."""
        return self.email is None


@dataclass(frozen=True)
class Invite:
    user_id: str
    email: str
    token: str
    """Shown once (in the link); only its hash is stored."""
    expires_at: datetime


@dataclass(frozen=True)
class LoginLimit:
    """Within ``window`` (which must stay within :data:`ATTEMPTS_KEPT`), at most ``attempts``
    failed sign-ins per email and address, ``per_email`` per email from any address and
    ``per_address`` per address (IPv6: its /64) for any email; API keys count as one
    email of their own for the first limit."""

    attempts: int = 5
    per_email: int = 20
    per_address: int = 50
    window: timedelta = timedelta(minutes=15)


def invite_path(token: str) -> str:
    """Where an invitation's link points, under the server's base URL."""
    return f"/console/invite/{token}"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, maxmem=_MAXMEM, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=32,
            maxmem=_MAXMEM,
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def is_weak(stored: str) -> bool:
    """Whether a stored hash used weaker parameters than today's (then it is redone at the
    next correct sign-in)."""
    try:
        _, n, r, p, _salt, _digest = stored.split("$")
        return int(n) < _SCRYPT["n"] or int(r) < _SCRYPT["r"] or int(p) < _SCRYPT["p"]
    except ValueError:
        return True


async def _rehash_if_weak(db: Database, user: ConsoleUser, password: str) -> None:
    if user.password_hash is None or not is_weak(user.password_hash):
        return
    stronger = await asyncio.to_thread(hash_password, password)
    async with db.transaction(write=True) as conn:
        await console_db.rehash_password(conn, user.id, user.password_hash, stronger)


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
    ``account_id`` (created on first invitation). The user's older unused invitations are
    used up: only the newest link works.

    Raises:
        AccountNotFound: no such account.
        InvalidParameter: a bad email, or one already signing in to another account.
    """
    address = normalise_email(email)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    async with db.transaction(write=True) as conn:
        await accounts_db.get_account(conn, account_id)
        user = await console_db.insert_user(
            conn,
            user_id=f"cuser_{secrets.token_hex(10)}",
            account_id=account_id,
            email=address,
            now=now,
        )
        if user.account_id != account_id:
            raise InvalidParameter(f"email: {address} already signs in to another account")
        invitation = console_db.Invitation(
            f"cinv_{secrets.token_hex(10)}", user.id, token_hash(token), now, now + ttl, None
        )
        await console_db.insert_invitation(conn, invitation)
        await console_db.retire_invitations(conn, user.id, now, keep=invitation.id)
    return Invite(user.id, address, token, invitation.expires_at)


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
        await console_db.retire_invitations(conn, invitation.user_id, now, keep=invitation.id)
        user = await console_db.find_user(conn, invitation.user_id)
    assert user is not None
    return user


# ---- sign-in -----------------------------------------------------------------------------------


def address_group(address: str) -> str:
    """The client address a limit counts by: IPv6 addresses grouped by their /64 (one host
    easily holds a whole /64), anything else as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


async def _attempt(db: Database, email: str | None, address: str, limit: LoginLimit) -> str:
    """Record an attempt (as failed until :func:`_succeeded` says otherwise) and count it in
    the same serialised write transaction, so parallel attempts cannot all slip under a
    limit. A refused attempt is not recorded (it checked nothing).

    Attempts older than a day are dropped on the way (no limit looks that far back).
    """
    attempt_id, now = f"clog_{secrets.token_hex(12)}", utcnow()
    checks: list[tuple[str | None, str | None, int]] = [
        (email or "", address, limit.attempts),
        (None, address, limit.per_address),
    ]
    if email is not None:
        checks.append((email, None, limit.per_email))
    async with db.transaction(write=True) as conn:
        await console_db.lock_attempts(conn)
        await console_db.prune_attempts(conn, now - ATTEMPTS_KEPT)
        await console_db.record_attempt(
            conn,
            attempt_id=attempt_id,
            email=email or "",
            address=address,
            succeeded=False,
            now=now,
        )
        for by_email, by_address, ceiling in checks:
            failures = await console_db.failures_since(
                conn, now - limit.window, email=by_email, address=by_address
            )
            if failures.count > ceiling and failures.oldest is not None:
                wait = max(1, int((failures.oldest + limit.window - now).total_seconds()) + 1)
                raise TooManyRequests(f"too many failed sign-ins; try again in {wait} seconds")
    return attempt_id


async def _succeeded(db: Database, attempt_id: str) -> None:
    async with db.transaction(write=True) as conn:
        await console_db.mark_succeeded(conn, attempt_id)


async def sign_in(
    db: Database, *, email: str, password: str, address: str, limit: LoginLimit
) -> Identity:
    """The identity behind an email and password.

    Raises:
        TooManyRequests: a limit of ``limit`` is reached (this email from this address, this
            email from anywhere, or anything from this address).
        Unauthenticated: wrong email or password (the same words either way).
    """
    wanted = email.strip().lower()[:320]
    attempt_id = await _attempt(db, wanted, address_group(address), limit)
    async with db.transaction() as conn:
        user = await console_db.find_user_by_email(conn, wanted)
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    matches = await asyncio.to_thread(verify_password, password, stored)
    if user is None or user.password_hash is None or not matches:
        raise Unauthenticated("the email or password is not right")
    await _succeeded(db, attempt_id)
    await _rehash_if_weak(db, user, password)
    return await user_identity(db, user.id, user.session_epoch)


async def sign_in_with_key(
    db: Database, *, secret: str, address: str, limit: LoginLimit
) -> Identity:
    """The identity behind an API key (rate-limited per address like passwords). A key
    session is always customer-role, whatever the account's role."""
    attempt_id = await _attempt(db, None, address_group(address), limit)
    principal = await authenticate(db, secret.strip())
    await _succeeded(db, attempt_id)
    return Identity(principal, "customer", None)


async def sign_out(db: Database, user_id: str) -> None:
    """End every session of the user (a new session epoch)."""
    async with db.transaction(write=True) as conn:
        await console_db.end_sessions(conn, user_id)


async def user_identity(db: Database, user_id: str, epoch: int) -> Identity:
    """The identity of a console user's session of session epoch ``epoch``.

    Raises:
        Unauthenticated: the user no longer exists, has no password, or signed out (or set a
            password) since the session began.
    """
    async with db.transaction() as conn:
        user = await console_db.find_user(conn, user_id)
        if user is None or user.password_hash is None or user.session_epoch != epoch:
            raise Unauthenticated("the session has ended; sign in again")
        account = await accounts_db.get_account(conn, user.account_id)
        role = await console_db.role_of(conn, user.account_id)
    principal = Principal(account.id, user.id, account.display_name)
    return Identity(principal, role, user.email, user.session_epoch)


async def key_identity(db: Database, key_id: str) -> Identity:
    """The identity of a session opened with an API key (checked active on each request;
    always customer-role)."""
    async with db.transaction() as conn:
        key = await accounts_db.get_api_key(conn, key_id)
        if key is None or key.revoked_at is not None:
            raise Unauthenticated("the API key of this session was revoked; sign in again")
        account = await accounts_db.get_account(conn, key.account_id)
        limit = await spend_db.get_limit(conn, key.id)  # its spend limit holds here too
    spend = (limit.spend_limit, limit.period) if limit else (None, None)
    return Identity(Principal(account.id, key.id, account.display_name, *spend), "customer", None)
