"""clearing tolerance, deposit leg, transaction kind

Revision ID: 2026_11_22_deposit_leg
Revises: 2026_11_22_card_transactions
Create Date: 2026-11-22 05:26:11.615890+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_22_deposit_leg"
down_revision: str | None = "2026_11_22_card_transactions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "card_transactions",
        sa.Column("kind", sa.String(length=20), server_default="AUTHORIZATION", nullable=False),
    )
    op.add_column(
        "card_transactions",
        sa.Column("deposit_account_id", postgresql.UUID(as_uuid=True), nullable=True),
    )
    op.add_column(
        "card_transactions",
        sa.Column("deposit_hold_transfer_id", postgresql.UUID(as_uuid=True), nullable=True),
    )
    op.add_column(
        "programs",
        sa.Column(
            "clearing_tolerances",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("programs", "clearing_tolerances")
    op.drop_column("card_transactions", "deposit_hold_transfer_id")
    op.drop_column("card_transactions", "deposit_account_id")
    op.drop_column("card_transactions", "kind")
