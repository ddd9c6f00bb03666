"""cards

Revision ID: 2026_11_22_cards
Revises: 2026_11_22_ledger_balances
Create Date: 2026-11-22 04:32:13.938220+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_22_cards"
down_revision: str | None = "2026_11_22_ledger_balances"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pan_data_keys",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_pan_data_keys")),
    )
    op.create_table(
        "card_products",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("network", sa.String(length=20), nullable=False),
        sa.Column("bin", sa.String(length=8), nullable=False),
        sa.Column("pan_length", sa.SmallInteger(), server_default="16", nullable=False),
        sa.Column("form_factors", sa.ARRAY(sa.String(length=10)), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("validity_months", sa.SmallInteger(), server_default="36", nullable=False),
        sa.Column("kyc_required", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("max_load", sa.BigInteger(), nullable=True),
        sa.Column(
            "default_controls",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_card_products_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_products")),
    )
    op.create_index(
        op.f("ix_card_products_program_id"), "card_products", ["program_id"], unique=False
    )
    op.create_table(
        "cards",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("product_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("balance_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("corporation_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("type", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("network", sa.String(length=20), nullable=False),
        sa.Column("bin", sa.String(length=8), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("pan_length", sa.SmallInteger(), nullable=False),
        sa.Column("pan_ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("pan_key_version", sa.Integer(), nullable=False),
        sa.Column("pan_hash", sa.LargeBinary(), nullable=False),
        sa.Column("expiry_month", sa.SmallInteger(), nullable=False),
        sa.Column("expiry_year", sa.SmallInteger(), nullable=False),
        sa.Column("cvv_key_index", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("embossing_name", sa.String(length=26), nullable=True),
        sa.Column("fulfillment_status", sa.String(length=30), nullable=True),
        sa.Column("delivery_address", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("carrier", sa.String(length=50), nullable=True),
        sa.Column("tracking_number", sa.String(length=100), nullable=True),
        sa.Column("pin_hash", sa.LargeBinary(), nullable=True),
        sa.Column("pin_scope", sa.String(length=40), nullable=True),
        sa.Column("pin_failures", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("gift_recipient_name", sa.String(length=100), nullable=True),
        sa.Column("gift_message", sa.String(length=500), nullable=True),
        sa.Column("holder_checks", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("holder_checks_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("previous_status", sa.String(length=20), nullable=True),
        sa.Column("lock_reason", sa.SmallInteger(), nullable=True),
        sa.Column(
            "controls", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("three_ds", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("replaced_by", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("replacement_for", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["balance_id"], ["balances.id"], name=op.f("fk_cards_balance_id_balances")
        ),
        sa.ForeignKeyConstraint(
            ["corporation_id"],
            ["corporations.id"],
            name=op.f("fk_cards_corporation_id_corporations"),
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["card_products.id"], name=op.f("fk_cards_product_id_card_products")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_cards_program_id_programs")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_cards_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cards")),
    )
    op.create_index("ix_cards_pan_key_version", "cards", ["pan_key_version"], unique=False)
    op.create_index(
        "ix_cards_program_id_balance_id", "cards", ["program_id", "balance_id"], unique=False
    )
    op.create_index("ix_cards_program_id_user_id", "cards", ["program_id", "user_id"], unique=False)
    op.create_index(
        "uq_cards_current_pan",
        "cards",
        ["network", "pan_hash"],
        unique=True,
        postgresql_where=sa.text("replaced_by IS NULL"),
    )
    op.create_table(
        "card_reports",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="OPEN", nullable=False),
        sa.Column("reported_by", sa.String(length=20), nullable=False),
        sa.Column("prior_status", sa.String(length=20), nullable=False),
        sa.Column("prior_lock_reason", sa.SmallInteger(), nullable=True),
        sa.Column("replacement_card_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("decline_reason", sa.String(length=500), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_reports_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_card_reports_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_reports")),
    )
    op.create_index(op.f("ix_card_reports_card_id"), "card_reports", ["card_id"], unique=False)
    op.create_index(
        op.f("ix_card_reports_program_id"), "card_reports", ["program_id"], unique=False
    )
    op.create_table(
        "card_requests",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="PENDING", nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_requests_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_card_requests_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_card_requests")),
    )
    op.create_table(
        "card_spend_counters",
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("channel", sa.String(length=12), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("amount", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("count", sa.Integer(), server_default="0", nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_card_spend_counters_card_id_cards")
        ),
        sa.PrimaryKeyConstraint(
            "card_id", "channel", "period", "period_start", name=op.f("pk_card_spend_counters")
        ),
    )
    op.create_table(
        "physical_requests",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="PENDING", nullable=False),
        sa.Column("delivery_address", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("embossing_name", sa.String(length=26), nullable=False),
        sa.Column("physical_card_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("reject_reason", sa.String(length=500), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_physical_requests_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_physical_requests_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_physical_requests")),
    )
    op.create_index(
        op.f("ix_physical_requests_program_id"), "physical_requests", ["program_id"], unique=False
    )
    op.add_column(
        "programs",
        sa.Column("timezone", sa.String(length=50), server_default="UTC", nullable=False),
    )
    op.add_column("programs", sa.Column("home_country", sa.String(length=2), nullable=True))
    op.add_column(
        "programs",
        sa.Column(
            "control_maxima",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
    )
    op.add_column(
        "programs",
        sa.Column(
            "allow_card_balance_change", sa.Boolean(), server_default="false", nullable=False
        ),
    )


def downgrade() -> None:
    op.drop_column("programs", "allow_card_balance_change")
    op.drop_column("programs", "control_maxima")
    op.drop_column("programs", "home_country")
    op.drop_column("programs", "timezone")
    op.drop_index(op.f("ix_physical_requests_program_id"), table_name="physical_requests")
    op.drop_table("physical_requests")
    op.drop_table("card_spend_counters")
    op.drop_table("card_requests")
    op.drop_index(op.f("ix_card_reports_program_id"), table_name="card_reports")
    op.drop_index(op.f("ix_card_reports_card_id"), table_name="card_reports")
    op.drop_table("card_reports")
    op.drop_index(
        "uq_cards_current_pan", table_name="cards", postgresql_where=sa.text("replaced_by IS NULL")
    )
    op.drop_index("ix_cards_program_id_user_id", table_name="cards")
    op.drop_index("ix_cards_program_id_balance_id", table_name="cards")
    op.drop_index("ix_cards_pan_key_version", table_name="cards")
    op.drop_table("cards")
    op.drop_index(op.f("ix_card_products_program_id"), table_name="card_products")
    op.drop_table("card_products")
    op.drop_table("pan_data_keys")
