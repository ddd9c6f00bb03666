"""ledger_and_balances

Revision ID: 2026_11_22_ledger_balances
Revises: 2026_11_22_customers
Create Date: 2026-11-22 03:53:23.778894+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_22_ledger_balances"
down_revision: str | None = "2026_11_22_customers"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=True),
        sa.Column("debits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "debits_must_not_exceed_credits", sa.Boolean(), server_default="false", nullable=False
        ),
        sa.Column(
            "credits_must_not_exceed_debits", sa.Boolean(), server_default="false", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted",
            name=op.f("ck_ledger_accounts_credits_must_not_exceed_debits"),
        ),
        sa.CheckConstraint(
            "NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted",
            name=op.f("ck_ledger_accounts_debits_must_not_exceed_credits"),
        ),
        sa.CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name=op.f("ck_ledger_accounts_totals_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_ledger_accounts_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
    )
    op.create_index(
        op.f("ix_ledger_accounts_program_id"), "ledger_accounts", ["program_id"], unique=False
    )
    op.create_index(
        "uq_ledger_accounts_system",
        "ledger_accounts",
        ["program_id", "currency", "kind"],
        unique=True,
        postgresql_where=sa.text("owner_id IS NULL"),
    )
    op.create_table(
        "balances",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("owner_type", sa.String(length=20), nullable=False),
        sa.Column("owner_id", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="ACTIVE", nullable=False),
        sa.Column("ledger_account_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ledger_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_balances_ledger_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_balances_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balances")),
        sa.UniqueConstraint("ledger_account_id", name=op.f("uq_balances_ledger_account_id")),
    )
    op.create_index(
        "ix_balances_program_id_owner_id", "balances", ["program_id", "owner_id"], unique=False
    )
    op.create_table(
        "ledger_transfers",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("debit_account_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("credit_account_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("pending_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("timeout_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "details", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kind IN ('single', 'pending')) = (pending_id IS NULL)",
            name=op.f("ck_ledger_transfers_resolution_has_pending"),
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_ledger_transfers_amount_not_negative")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id",
            name=op.f("ck_ledger_transfers_distinct_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_transfers_credit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_transfers_debit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_ledger_transfers_pending_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_ledger_transfers_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_transfers_key")),
        sa.UniqueConstraint("pending_id", name=op.f("uq_ledger_transfers_pending_id")),
    )
    op.create_index(
        "ix_ledger_transfers_credit_account_id_id",
        "ledger_transfers",
        ["credit_account_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_ledger_transfers_debit_account_id_id",
        "ledger_transfers",
        ["debit_account_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_ledger_transfers_pending_timeout",
        "ledger_transfers",
        ["timeout_at"],
        unique=False,
        postgresql_where=sa.text("kind = 'pending' AND timeout_at IS NOT NULL"),
    )
    op.create_table(
        "partner_balances",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("ledger_account_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("low_balance_threshold", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["ledger_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_partner_balances_ledger_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_partner_balances_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_balances")),
        sa.UniqueConstraint(
            "ledger_account_id", name=op.f("uq_partner_balances_ledger_account_id")
        ),
        sa.UniqueConstraint(
            "program_id",
            "type",
            "currency",
            name=op.f("uq_partner_balances_program_id_type_currency"),
        ),
    )
    op.create_table(
        "payment_contacts",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=False),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("holder_name", sa.String(length=140), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_payment_contacts_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_payment_contacts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_contacts")),
    )
    op.create_index(
        op.f("ix_payment_contacts_user_id"), "payment_contacts", ["user_id"], unique=False
    )
    op.create_table(
        "money_transfers",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("source_balance_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("destination_balance_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("payment_contact_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=140), nullable=True),
        sa.Column("ledger_transfer_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["destination_balance_id"],
            ["balances.id"],
            name=op.f("fk_money_transfers_destination_balance_id_balances"),
        ),
        sa.ForeignKeyConstraint(
            ["ledger_transfer_id"],
            ["ledger_transfers.id"],
            name=op.f("fk_money_transfers_ledger_transfer_id_ledger_transfers"),
        ),
        sa.ForeignKeyConstraint(
            ["payment_contact_id"],
            ["payment_contacts.id"],
            name=op.f("fk_money_transfers_payment_contact_id_payment_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_money_transfers_program_id_programs")
        ),
        sa.ForeignKeyConstraint(
            ["source_balance_id"],
            ["balances.id"],
            name=op.f("fk_money_transfers_source_balance_id_balances"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_money_transfers")),
    )
    op.create_index(
        "ix_money_transfers_source_balance_id_id",
        "money_transfers",
        ["source_balance_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_money_transfers_source_balance_id_id", table_name="money_transfers")
    op.drop_table("money_transfers")
    op.drop_index(op.f("ix_payment_contacts_user_id"), table_name="payment_contacts")
    op.drop_table("payment_contacts")
    op.drop_table("partner_balances")
    op.drop_index(
        "ix_ledger_transfers_pending_timeout",
        table_name="ledger_transfers",
        postgresql_where=sa.text("kind = 'pending' AND timeout_at IS NOT NULL"),
    )
    op.drop_index("ix_ledger_transfers_debit_account_id_id", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_credit_account_id_id", table_name="ledger_transfers")
    op.drop_table("ledger_transfers")
    op.drop_index("ix_balances_program_id_owner_id", table_name="balances")
    op.drop_table("balances")
    op.drop_index(
        "uq_ledger_accounts_system",
        table_name="ledger_accounts",
        postgresql_where=sa.text("owner_id IS NULL"),
    )
    op.drop_index(op.f("ix_ledger_accounts_program_id"), table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
