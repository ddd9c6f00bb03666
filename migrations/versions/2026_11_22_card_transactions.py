"""card_transactions

Revision ID: 2026_11_22_card_transactions
Revises: 2026_11_22_cards
Create Date: 2026-11-22 04:50:34.936723+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_22_card_transactions"
down_revision: str | None = "2026_11_22_cards"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("rate", sa.Numeric(precision=24, scale=10), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_fx_rates_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("program_id", "base", "quote", name=op.f("pk_fx_rates")),
    )
    op.create_table(
        "card_transactions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("balance_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("held_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("settled_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("entry_mode", sa.String(length=12), nullable=False),
        sa.Column("merchant", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("response_code", sa.String(length=4), nullable=False),
        sa.Column("decline_reason", sa.String(length=100), nullable=True),
        sa.Column("authorization_code", sa.String(length=6), nullable=True),
        sa.Column("hold_transfer_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("billing_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("billing_currency", sa.String(length=3), server_default="", nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["balance_id"], ["balances.id"], name=op.f("fk_card_transactions_balance_id_balances")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_transactions_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_card_transactions_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_transactions")),
    )
    op.create_index(
        "ix_card_transactions_program_id_balance_id_id",
        "card_transactions",
        ["program_id", "balance_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_card_transactions_program_id_card_id_id",
        "card_transactions",
        ["program_id", "card_id", "id"],
        unique=False,
    )
    op.create_table(
        "card_transaction_events",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("transaction_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("network_key", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("response", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("ledger_transfer_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_card_transaction_events_program_id_programs"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["card_transactions.id"],
            name=op.f("fk_card_transaction_events_transaction_id_card_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_transaction_events")),
        sa.UniqueConstraint("network_key", name=op.f("uq_card_transaction_events_network_key")),
    )
    op.create_index(
        op.f("ix_card_transaction_events_transaction_id"),
        "card_transaction_events",
        ["transaction_id"],
        unique=False,
    )
    op.add_column(
        "programs", sa.Column("fx_markup_bps", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column(
        "programs", sa.Column("hold_expiry_days", sa.Integer(), server_default="7", nullable=False)
    )


def downgrade() -> None:
    op.drop_column("programs", "hold_expiry_days")
    op.drop_column("programs", "fx_markup_bps")
    op.drop_index(
        op.f("ix_card_transaction_events_transaction_id"), table_name="card_transaction_events"
    )
    op.drop_table("card_transaction_events")
    op.drop_index("ix_card_transactions_program_id_card_id_id", table_name="card_transactions")
    op.drop_index("ix_card_transactions_program_id_balance_id_id", table_name="card_transactions")
    op.drop_table("card_transactions")
    op.drop_table("fx_rates")
