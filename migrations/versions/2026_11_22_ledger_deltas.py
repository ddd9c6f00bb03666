"""ledger deltas

Revision ID: 2026_11_22_ledger_deltas
Revises: 2026_11_22_deposit_leg
Create Date: 2026-11-22 05:32:51.957269+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_22_ledger_deltas"
down_revision: str | None = "2026_11_22_deposit_leg"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_account_deltas",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("account_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_account_deltas")),
    )
    op.create_index(
        op.f("ix_ledger_account_deltas_account_id"),
        "ledger_account_deltas",
        ["account_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_account_deltas_account_id"), table_name="ledger_account_deltas")
    op.drop_table("ledger_account_deltas")
