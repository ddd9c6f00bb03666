"""fees

Revision ID: 2026_11_22_fees
Revises: 2026_11_22_ledger_deltas
Create Date: 2026-11-22 07:54:57.411020+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_22_fees"
down_revision: str | None = "2026_11_22_ledger_deltas"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fee_schedules",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("product_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fees", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["card_products.id"],
            name=op.f("fk_fee_schedules_product_id_card_products"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_fee_schedules_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_schedules")),
    )
    op.create_index(
        "ix_fee_schedules_program_id_product_id_effective_from",
        "fee_schedules",
        ["program_id", "product_id", "effective_from"],
        unique=False,
    )
    op.create_table(
        "fees",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("schedule_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("rule", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("balance_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("transaction_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("money_transfer_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("basis_amount", sa.BigInteger(), nullable=True),
        sa.Column("refunded_amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("period", sa.String(length=12), nullable=True),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("waiver", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("ledger_transfer_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retry_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("charged_at", sa.DateTime(timezone=True), nullable=True),
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
            ["balance_id"], ["balances.id"], name=op.f("fk_fees_balance_id_balances")
        ),
        sa.ForeignKeyConstraint(["card_id"], ["cards.id"], name=op.f("fk_fees_card_id_cards")),
        sa.ForeignKeyConstraint(
            ["ledger_transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_fees_ledger_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["money_transfer_id"],
            ["money_transfers.id"],
            name=op.f("fk_fees_money_transfer_id_money_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_fees_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["schedule_id"], ["fee_schedules.id"], name=op.f("fk_fees_schedule_id_fee_schedules")
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["card_transactions.id"],
            name=op.f("fk_fees_transaction_id_card_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fees")),
        sa.UniqueConstraint("key", name=op.f("uq_fees_key")),
    )
    op.create_index("ix_fees_balance_id", "fees", ["balance_id"], unique=False)
    op.create_index("ix_fees_card_id", "fees", ["card_id"], unique=False)
    op.create_index(
        "ix_fees_due",
        "fees",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'DUE'"),
    )
    op.create_index("ix_fees_money_transfer_id", "fees", ["money_transfer_id"], unique=False)
    op.create_index("ix_fees_program_id_id", "fees", ["program_id", "id"], unique=False)
    op.create_index("ix_fees_transaction_id", "fees", ["transaction_id"], unique=False)
    op.create_table(
        "fee_refunds",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("fee_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("refunded_by", sa.String(length=64), nullable=False),
        sa.Column("ledger_transfer_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["fee_id"], ["fees.id"], name=op.f("fk_fee_refunds_fee_id_fees")),
        sa.ForeignKeyConstraint(
            ["ledger_transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_fee_refunds_ledger_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_fee_refunds_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fee_refunds")),
    )
    op.create_index(op.f("ix_fee_refunds_fee_id"), "fee_refunds", ["fee_id"], unique=False)
    op.add_column(
        "ledger_accounts",
        sa.Column("overdraft_limit", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.add_column(
        "programs",
        sa.Column(
            "fee_shortfall_policy", sa.String(length=20), server_default="SKIP", nullable=False
        ),
    )
    op.add_column(
        "programs", sa.Column("fee_retry_days", sa.Integer(), server_default="3", nullable=False)
    )
    op.add_column(
        "programs",
        sa.Column(
            "fee_overdraft_limits",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
    )
    # The balance rule allows what an overdraft-allowing transfer raised the limit to.
    op.drop_constraint(
        op.f("ck_ledger_accounts_debits_must_not_exceed_credits"), "ledger_accounts", type_="check"
    )
    op.create_check_constraint(
        "debits_must_not_exceed_credits",
        "ledger_accounts",
        "NOT debits_must_not_exceed_credits "
        "OR debits_pending + debits_posted <= credits_posted + overdraft_limit",
    )
    op.create_check_constraint(
        "overdraft_limit_not_negative", "ledger_accounts", "overdraft_limit >= 0"
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_ledger_accounts_overdraft_limit_not_negative"), "ledger_accounts", type_="check"
    )
    op.drop_constraint(
        op.f("ck_ledger_accounts_debits_must_not_exceed_credits"), "ledger_accounts", type_="check"
    )
    op.create_check_constraint(
        "debits_must_not_exceed_credits",
        "ledger_accounts",
        "NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted",
    )
    op.drop_column("programs", "fee_overdraft_limits")
    op.drop_column("programs", "fee_retry_days")
    op.drop_column("programs", "fee_shortfall_policy")
    op.drop_column("ledger_accounts", "overdraft_limit")
    op.drop_index(op.f("ix_fee_refunds_fee_id"), table_name="fee_refunds")
    op.drop_table("fee_refunds")
    op.drop_index("ix_fees_transaction_id", table_name="fees")
    op.drop_index("ix_fees_program_id_id", table_name="fees")
    op.drop_index("ix_fees_money_transfer_id", table_name="fees")
    op.drop_index("ix_fees_due", table_name="fees", postgresql_where=sa.text("status = 'DUE'"))
    op.drop_index("ix_fees_card_id", table_name="fees")
    op.drop_index("ix_fees_balance_id", table_name="fees")
    op.drop_table("fees")
    op.drop_index(
        "ix_fee_schedules_program_id_product_id_effective_from", table_name="fee_schedules"
    )
    op.drop_table("fee_schedules")
