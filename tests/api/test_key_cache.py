"""The authentication cache (issue 17): a key found in the last second answers without a
database round trip; a revocation in this process is honoured at once, one in another process
within the cache's 1 s."""

from __future__ import annotations

import httpx
import pytest

from tests.support.factories import customer
from tests.support.statements import counting
from tests.support.waiting import until
from wfrun.clock import utcnow
from wfrun.db import accounts as accounts_db
from wfrun.db.database import Database
from wfrun.runtime import Runtime
from wfrun.services import accounts
from wfrun.services.key_cache import KeyCache

BALANCE = "/balance/info"


async def _status(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await http.get(BALANCE, headers=headers)).status_code


async def test_a_key_revoked_in_this_process_is_refused_at_once(
    runtime: Runtime, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even with entries kept an hour (so a slow machine cannot expire them mid-test)."""
    monkeypatch.setattr(accounts, "_principals", KeyCache(ttl=3600))
    alice = await customer(runtime)
    assert await _status(http, alice.headers) == 200  # now cached
    async with counting(runtime.db) as cached:
        assert await _status(http, alice.headers) == 200
    assert len(cached.statements) == 1, cached.explain()  # the balance read only: no key lookup
    key_id = (await accounts.list_keys(runtime.db, alice.account_id))[0].id
    await accounts.revoke_key(runtime.db, key_id)
    response = await http.get(BALANCE, headers=alice.headers)
    assert response.status_code == 401, response.text
    assert response.json()["data"]["error"]["reason"] == "API key is invalid or revoked."


async def test_a_key_revoked_by_another_process_stops_working_within_the_ttl(
    runtime: Runtime, http: httpx.AsyncClient, database_url: str
) -> None:
    """Another replica revokes through its own connection: this process's cache is not told,
    and its entry lapses."""
    alice = await customer(runtime)
    assert await _status(http, alice.headers) == 200
    key_id = (await accounts.list_keys(runtime.db, alice.account_id))[0].id
    other = Database(database_url)
    try:
        async with other.transaction(write=True) as conn:
            assert await accounts_db.revoke_api_key(conn, key_id, utcnow()) == 1
    finally:
        await other.dispose()

    async def refused() -> bool:
        return await _status(http, alice.headers) == 401

    await until(refused, what="the revoked key to be refused")


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_a_ttl_after_their_lookup_started() -> None:
    clock = _Clock()
    cache: KeyCache[str] = KeyCache(ttl=1.0, size=2, clock=clock)
    token = cache.begin_lookup()
    clock.now += 0.4  # the lookup took 0.4 s
    cache.put(("db", "a"), "alice", token)
    clock.now += 0.5
    assert cache.get(("db", "a")) == "alice"
    clock.now += 0.1  # 1 s after the lookup began
    assert cache.get(("db", "a")) is None


def test_a_lookup_in_flight_across_a_revocation_is_not_cached() -> None:
    cache: KeyCache[str] = KeyCache()
    token = cache.begin_lookup()
    cache.clear()  # a revocation committed while the lookup ran
    cache.put(("db", "a"), "alice", token)
    assert cache.get(("db", "a")) is None


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache: KeyCache[str] = KeyCache(size=2)
    for name in ("a", "b"):
        cache.put(("db", name), name, cache.begin_lookup())
    assert cache.get(("db", "a")) == "a"  # b is now the least recently used
    cache.put(("db", "c"), "c", cache.begin_lookup())
    assert cache.get(("db", "b")) is None
    assert cache.get(("db", "a")) == "a"
    assert cache.get(("db", "c")) == "c"
