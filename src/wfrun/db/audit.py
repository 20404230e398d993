"""Ledger invariants as queries (reliability.md INV-1, 3, 5, 7, 8; the operator's refunds; the
keys' spend counters).
Each returns problems found; an empty list means the books balance. Run after every test and by ``wfrun ledger check``."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_CHECKS: dict[str, str] = {
    "entry does not balance": """
        SELECT e.id, SUM(p.amount) FROM ledger_entries e
        JOIN ledger_postings p ON p.entry_id = e.id
        GROUP BY e.id HAVING SUM(p.amount) <> 0""",
    "cached available differs from postings": """
        SELECT a.id, a.available, COALESCE(SUM(p.amount), 0) FROM accounts a
        LEFT JOIN ledger_postings p ON p.account_id = a.id AND p.bucket = 'available'
        GROUP BY a.id, a.available HAVING a.available <> COALESCE(SUM(p.amount), 0)""",
    "cached frozen differs from postings": """
        SELECT a.id, a.frozen, COALESCE(SUM(p.amount), 0) FROM accounts a
        LEFT JOIN ledger_postings p ON p.account_id = a.id AND p.bucket = 'frozen'
        GROUP BY a.id, a.frozen HAVING a.frozen <> COALESCE(SUM(p.amount), 0)""",
    "cached frozen differs from open freezes": """
        SELECT a.id, a.frozen, COALESCE(SUM(h.amount), 0) FROM accounts a
        LEFT JOIN freezes h ON h.account_id = a.id AND h.status = 'frozen'
        GROUP BY a.id, a.frozen HAVING a.frozen <> COALESCE(SUM(h.amount), 0)""",
    "run and freeze disagree (open freeze on an ended run, or closed freeze on a live run)": """
        SELECT r.id, r.status, h.status FROM runs r JOIN freezes h ON h.run_id = r.id
        WHERE (h.status = 'frozen') <> (r.status IN ('queued', 'running'))
           OR h.status <> r.freeze_status""",
    "run without exactly one freeze": """
        SELECT r.id, COUNT(h.id) FROM runs r LEFT JOIN freezes h ON h.run_id = r.id
        GROUP BY r.id HAVING COUNT(h.id) <> 1""",
    "ended run whose final + released does not cover its freeze": """
        SELECT r.id, r.quote_amount, r.final_amount, r.released_amount FROM runs r
        WHERE r.status NOT IN ('queued', 'running') AND (
            r.final_amount IS NULL OR r.released_amount IS NULL
            OR r.released_amount <> CASE WHEN r.quote_amount > r.final_amount
                                         THEN r.quote_amount - r.final_amount ELSE 0 END)""",
    "failed run that was charged": """
        SELECT r.id, r.final_amount FROM runs r WHERE r.status = 'failed' AND r.final_amount <> 0""",
    "run whose ledger entries are not one freeze plus one resolution when ended": """
        SELECT r.id,
               SUM(CASE WHEN e.kind = 'freeze' THEN 1 ELSE 0 END),
               SUM(CASE WHEN e.kind IN ('settle', 'release') THEN 1 ELSE 0 END)
        FROM runs r LEFT JOIN ledger_entries e ON e.run_id = r.id
        GROUP BY r.id, r.status
        HAVING SUM(CASE WHEN e.kind = 'freeze' THEN 1 ELSE 0 END) <> 1
            OR SUM(CASE WHEN e.kind IN ('settle', 'release') THEN 1 ELSE 0 END)
               <> CASE WHEN r.status IN ('queued', 'running') THEN 0 ELSE 1 END""",
    "settled amount differs from the run's final amount": """
        SELECT r.id, r.final_amount, SUM(p.amount) FROM runs r
        JOIN ledger_entries e ON e.run_id = r.id AND e.kind IN ('settle', 'release')
        JOIN ledger_postings p ON p.entry_id = e.id AND p.bucket = 'revenue'
        GROUP BY r.id, r.final_amount HAVING SUM(p.amount) <> r.final_amount""",
    "ledger entry of an unknown kind": """
        SELECT e.id, e.kind FROM ledger_entries e
        WHERE e.kind NOT IN ('topup', 'freeze', 'settle', 'release', 'refund', 'adjust')""",
    "refund entry that is not one refund's revenue → available of its amount": """
        SELECT e.id, f.id, f.amount, SUM(p.amount) FROM ledger_entries e
        LEFT JOIN refunds f ON f.entry_id = e.id
        LEFT JOIN ledger_postings p ON p.entry_id = e.id AND p.bucket = 'available'
        WHERE e.kind = 'refund' OR f.id IS NOT NULL
        GROUP BY e.id, e.kind, e.run_id, f.id, f.amount, f.account_id, e.account_id
        HAVING f.id IS NULL OR e.kind <> 'refund' OR e.run_id IS NOT NULL
            OR f.account_id <> e.account_id OR COALESCE(SUM(p.amount), 0) <> f.amount""",
    "run refunded more than it was charged": """
        SELECT r.id, r.final_amount, SUM(f.amount) FROM runs r JOIN refunds f ON f.run_id = r.id
        GROUP BY r.id, r.final_amount HAVING SUM(f.amount) > COALESCE(r.final_amount, 0)""",
    "key spend counter differs from its runs (frozen: live runs' quotes; spent: ended runs' "
    "charges less their refunds)": """
        SELECT s.key_id, s.period_key, s.frozen, s.spent, c.live, c.charged, c.refunded
        FROM key_spend s LEFT JOIN (
            SELECT r.api_key_id, r.spend_window,
                   SUM(CASE WHEN r.status IN ('queued', 'running') THEN r.quote_amount
                            ELSE 0 END) AS live,
                   SUM(CASE WHEN r.status IN ('queued', 'running') THEN 0
                            ELSE r.final_amount END) AS charged,
                   SUM(COALESCE(f.total, 0)) AS refunded
            FROM runs r
            LEFT JOIN (SELECT run_id, SUM(amount) AS total FROM refunds GROUP BY run_id) f
                   ON f.run_id = r.id
            WHERE r.spend_window IS NOT NULL
            GROUP BY r.api_key_id, r.spend_window
        ) c ON c.api_key_id = s.key_id AND c.spend_window = s.period_key
        WHERE s.frozen <> COALESCE(c.live, 0)
           OR s.spent <> COALESCE(c.charged, 0) - COALESCE(c.refunded, 0)""",
    "run counting against a key's spend without the key's counter": """
        SELECT r.id, r.api_key_id, r.spend_window FROM runs r
        WHERE r.spend_window IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM key_spend s
            WHERE s.key_id = r.api_key_id AND s.period_key = r.spend_window)""",
}


async def ledger_problems(conn: AsyncConnection) -> list[str]:
    """Every invariant violation, described with the offending rows."""
    problems: list[str] = []
    for name, sql in _CHECKS.items():
        rows = (await conn.execute(text(sql))).all()
        problems += [f"{name}: {tuple(row)}" for row in rows]
    return problems


_TERMINAL = "('succeeded', 'failed', 'cancelled')"
_OUTBOX_CHECK = f"""
    SELECT r.id, r.status FROM runs r LEFT JOIN outbox_events o ON o.run_id = r.id
    GROUP BY r.id, r.status, r.started_at
    HAVING SUM(CASE WHEN o.status = 'queued' THEN 1 ELSE 0 END) <> 1
        OR SUM(CASE WHEN o.status = 'running' THEN 1 ELSE 0 END)
           <> CASE WHEN r.started_at IS NULL THEN 0 ELSE 1 END
        OR SUM(CASE WHEN o.status IN {_TERMINAL} THEN 1 ELSE 0 END)
           <> CASE WHEN r.status IN {_TERMINAL} THEN 1 ELSE 0 END
        OR SUM(CASE WHEN o.status IN {_TERMINAL} AND o.status <> r.status THEN 1 ELSE 0 END) > 0"""


async def outbox_problems(conn: AsyncConnection) -> list[str]:
    """Runs whose outbox does not hold exactly their changes: one ``queued``, one ``started``
    once started, one terminal change matching the status once ended. (Runs from before the
    outbox existed have none; the test suite checks this after every test.)"""
    rows = (await conn.execute(text(_OUTBOX_CHECK))).all()
    return [f"run whose outbox disagrees with its status: {tuple(row)}" for row in rows]
