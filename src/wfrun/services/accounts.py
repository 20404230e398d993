"""Accounts, top-ups and API keys (operator side), and API key authentication."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from wfrun import ids
from wfrun.clock import utcnow
from wfrun.db import accounts as accounts_db
from wfrun.db import ledger_requests as ledger_requests_db
from wfrun.db.accounts import Account, ApiKey
from wfrun.db.database import Database
from wfrun.db.ledger_requests import LedgerRequest
from wfrun.domain import ledger
from wfrun.domain.money import MAX_MINOR, format_amount
from wfrun.errors import ApiKeyNotFound, InvalidApiKey, InvalidParameter
from wfrun.services.key_cache import KeyCache


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's account."""

    account_id: str
    api_key_id: str
    display_name: str
    spend_limit: int | None = None
    """The key's spend limit per ``spend_period`` (``domain.caps.Period``), if it has one."""
    spend_period: str | None = None


@dataclass(frozen=True)
class CreatedKey:
    key_id: str
    account_id: str
    secret: str
    """Shown once; only its hash is stored."""


def hash_key(secret: str) -> str:
    """Keys carry 240 random bits, so a plain SHA-256 is a sound one-way lookup hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_account(db: Database, *, display_name: str, account_id: str | None = None) -> str:
    account_id = account_id or ids.new_account_id()
    async with db.transaction(write=True) as conn:
        await accounts_db.insert_account(
            conn, account_id=account_id, display_name=display_name, now=utcnow()
        )
    return account_id


async def top_up(
    db: Database,
    *,
    account_id: str,
    amount: int,
    memo: str = "",
    idempotency_key: str | None = None,
) -> Account:
    """Credit ``amount`` minor units to the account; returns the account afterwards.

    With an ``idempotency_key``, a repeat (the same key, account and amount) posts nothing and
    returns the account as it is now.
    """
    if amount <= 0:
        raise InvalidParameter(f"top-up amount must be positive, got {amount}")
    postings = ledger.topup(amount)
    async with db.transaction(write=True) as conn:
        now = utcnow()
        if idempotency_key is not None:
            asked = LedgerRequest(idempotency_key, account_id, "topup", amount, None, now)
            if await ledger_requests_db.claim(conn, asked) is not None:
                return await accounts_db.get_account(conn, account_id)
        account = await accounts_db.get_account(conn, account_id)
        if account.available + amount > MAX_MINOR:  # the database's integer would overflow
            raise InvalidParameter(
                f"account {account_id} would hold more than {format_amount(MAX_MINOR)}"
            )
        entry_id = await accounts_db.record_entry(
            conn,
            kind=ledger.EntryKind.TOPUP,
            account_id=account_id,
            postings=postings,
            now=now,
            memo=memo,
        )
        await accounts_db.apply_balance(conn, account_id, postings)
        if idempotency_key is not None:
            await ledger_requests_db.settle(conn, idempotency_key, entry_id)
        return await accounts_db.get_account(conn, account_id)


async def get_account(db: Database, account_id: str) -> Account:
    async with db.read() as conn:
        return await accounts_db.get_account(conn, account_id)


async def list_accounts(db: Database) -> list[Account]:
    async with db.transaction() as conn:
        return await accounts_db.list_accounts(conn)


async def create_key(db: Database, *, account_id: str, name: str = "") -> CreatedKey:
    secret = ids.new_api_key_secret()
    key_id = ids.new_api_key_id()
    values: dict[str, Any] = {
        "id": key_id,
        "account_id": account_id,
        "name": name,
        "prefix": secret[:10],
        "key_hash": hash_key(secret),
        "created_at": utcnow(),
    }
    async with db.transaction(write=True) as conn:
        await accounts_db.get_account(conn, account_id)
        await accounts_db.insert_api_key(conn, values)
    return CreatedKey(key_id=key_id, account_id=account_id, secret=secret)


def forget_cached_keys() -> None:
    """Drop every cached key: a change to a key (revoked, a new spend limit) holds in this
    process at once, in others within the cache's 1 s."""
    _principals.clear()


async def revoke_key(db: Database, key_id: str) -> bool:
    """Revoke a key; False when it was already revoked. This process stops accepting it at
    once (the key cache is cleared before and after), other processes within 1 s."""
    _principals.clear()
    async with db.transaction(write=True) as conn:
        if await accounts_db.get_api_key(conn, key_id) is None:
            raise ApiKeyNotFound(f"API key {key_id} does not exist")
        revoked = await accounts_db.revoke_api_key(conn, key_id, utcnow()) == 1
    _principals.clear()
    return revoked


async def list_keys(db: Database, account_id: str | None = None) -> list[ApiKey]:
    async with db.transaction() as conn:
        return await accounts_db.list_api_keys(conn, account_id)


_principals: KeyCache[Principal] = KeyCache()
"""Found keys, for at most 1 s (see :mod:`wfrun.services.key_cache` for why and how)."""


async def authenticate(db: Database, secret: str) -> Principal:
    """The principal behind an API key secret; a key found in the last second is answered
    from an in-process cache without a database round trip.

    Raises:
        InvalidApiKey: unknown or revoked key.
    """
    cache_key = (db.url, hash_key(secret))
    cached = _principals.get(cache_key)
    if cached is not None:
        return cached
    token = _principals.begin_lookup()
    async with db.read() as conn:
        row = await accounts_db.find_key_principal(conn, cache_key[1])
    if row is None:
        raise InvalidApiKey("the API key is not recognised or has been revoked")
    principal = Principal(
        row.account_id, row.api_key_id, row.display_name, row.spend_limit, row.spend_period
    )
    _principals.put(cache_key, principal, token)
    return principal
