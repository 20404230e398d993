"""refunds in key spend: a key's spend is what it was charged net of refunds

Why: until now an operator's refund left the run's key's ``key_spend.spent`` as it was, so a
refunded run kept holding the key's spend limit in its period; refunds now lower it
(``services.spending.count_refund``), and the books check compares every counter with its runs.
This gives back what the refunds already made took, once: each counter's ``spent`` loses the
refunds of the runs that count in it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 18:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_REFUNDED = """
    SELECT COALESCE(SUM(f.amount), 0) FROM refunds f JOIN runs r ON r.id = f.run_id
    WHERE r.api_key_id = key_spend.key_id AND r.spend_window = key_spend.period_key"""


def upgrade() -> None:
    op.execute(f"UPDATE key_spend SET spent = spent - ({_REFUNDED})")


def downgrade() -> None:
    op.execute(f"UPDATE key_spend SET spent = spent + ({_REFUNDED})")
