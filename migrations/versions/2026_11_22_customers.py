"""customers

Revision ID: 2026_11_22_customers
Revises: 2026_11_22_webhooks_jobs
Create Date: 2026-11-22 03:43:21.674049+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_11_22_customers"
down_revision: str | None = "2026_11_22_webhooks_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "corporations",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("registration_number", sa.String(length=50), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("address_line1", sa.String(length=200), nullable=False),
        sa.Column("address_line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="ACTIVE", nullable=False),
        sa.Column("kyb_status", sa.String(length=20), server_default="NOT_STARTED", nullable=False),
        sa.Column("kyb_reason", sa.String(length=500), nullable=True),
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
            ["program_id"], ["programs.id"], name=op.f("fk_corporations_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corporations")),
        sa.UniqueConstraint(
            "program_id",
            "country",
            "registration_number",
            name=op.f("uq_corporations_program_id_country_registration_number"),
        ),
    )
    op.create_index(
        op.f("ix_corporations_program_id"), "corporations", ["program_id"], unique=False
    )
    op.create_table(
        "kyc_documents",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=30), nullable=False),
        sa.Column("side", sa.String(length=10), nullable=True),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_kyc_documents_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kyc_documents")),
    )
    op.create_index(
        "ix_kyc_documents_subject", "kyc_documents", ["subject_type", "subject_id"], unique=False
    )
    op.create_table(
        "verification_history",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=False),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("actor_type", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_verification_history_program_id_programs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_history")),
    )
    op.create_index(
        "ix_verification_history_subject",
        "verification_history",
        ["subject_type", "subject_id", "id"],
        unique=False,
    )
    op.create_table(
        "addresses",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.String(length=20), nullable=False),
        sa.Column("line1", sa.String(length=200), nullable=False),
        sa.Column("line2", sa.String(length=200), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("state", sa.String(length=10), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=False),
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
            ["program_id"], ["programs.id"], name=op.f("fk_addresses_program_id_programs")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_addresses_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_addresses")),
    )
    op.create_index(op.f("ix_addresses_user_id"), "addresses", ["user_id"], unique=False)
    op.create_table(
        "corporation_employees",
        sa.Column("corporation_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["corporation_id"],
            ["corporations.id"],
            name=op.f("fk_corporation_employees_corporation_id_corporations"),
        ),
        sa.ForeignKeyConstraint(
            ["program_id"],
            ["programs.id"],
            name=op.f("fk_corporation_employees_program_id_programs"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_corporation_employees_user_id_users")
        ),
        sa.PrimaryKeyConstraint("corporation_id", "user_id", name=op.f("pk_corporation_employees")),
    )
    op.create_index(
        op.f("ix_corporation_employees_user_id"), "corporation_employees", ["user_id"], unique=False
    )
    op.add_column("users", sa.Column("external_reference", sa.String(length=100), nullable=True))
    op.add_column("users", sa.Column("email", sa.String(length=320), nullable=True))
    op.add_column("users", sa.Column("phone", sa.String(length=20), nullable=True))
    op.add_column(
        "users",
        sa.Column("kyc_status", sa.String(length=20), server_default="NOT_STARTED", nullable=False),
    )
    op.add_column("users", sa.Column("kyc_reason", sa.String(length=500), nullable=True))
    op.add_column("users", sa.Column("first_name", sa.String(length=100), nullable=True))
    op.add_column("users", sa.Column("middle_name", sa.String(length=100), nullable=True))
    op.add_column("users", sa.Column("last_name", sa.String(length=100), nullable=True))
    op.add_column("users", sa.Column("date_of_birth", sa.Date(), nullable=True))
    op.add_column("users", sa.Column("nationality", sa.String(length=2), nullable=True))
    op.add_column("users", sa.Column("national_id_type", sa.String(length=30), nullable=True))
    op.add_column("users", sa.Column("national_id_ciphertext", sa.LargeBinary(), nullable=True))
    op.add_column("users", sa.Column("national_id_hash", sa.LargeBinary(), nullable=True))
    op.add_column("users", sa.Column("national_id_last4", sa.String(length=4), nullable=True))
    op.add_column(
        "users",
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )
    op.add_column("users", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_users_program_id_email_lower",
        "users",
        ["program_id", sa.text("lower(email)")],
        unique=False,
    )
    op.create_index(
        "ix_users_program_id_national_id_hash",
        "users",
        ["program_id", "national_id_hash"],
        unique=False,
    )
    op.create_index("ix_users_program_id_phone", "users", ["program_id", "phone"], unique=False)
    op.create_unique_constraint(
        op.f("uq_users_program_id_external_reference"),
        "users",
        ["program_id", "external_reference"],
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_users_program_id_external_reference"), "users", type_="unique")
    op.drop_index("ix_users_program_id_phone", table_name="users")
    op.drop_index("ix_users_program_id_national_id_hash", table_name="users")
    op.drop_index("ix_users_program_id_email_lower", table_name="users")
    op.drop_column("users", "closed_at")
    op.drop_column("users", "updated_at")
    op.drop_column("users", "national_id_last4")
    op.drop_column("users", "national_id_hash")
    op.drop_column("users", "national_id_ciphertext")
    op.drop_column("users", "national_id_type")
    op.drop_column("users", "nationality")
    op.drop_column("users", "date_of_birth")
    op.drop_column("users", "last_name")
    op.drop_column("users", "middle_name")
    op.drop_column("users", "first_name")
    op.drop_column("users", "kyc_reason")
    op.drop_column("users", "kyc_status")
    op.drop_column("users", "phone")
    op.drop_column("users", "email")
    op.drop_column("users", "external_reference")
    op.drop_index(op.f("ix_corporation_employees_user_id"), table_name="corporation_employees")
    op.drop_table("corporation_employees")
    op.drop_index(op.f("ix_addresses_user_id"), table_name="addresses")
    op.drop_table("addresses")
    op.drop_index("ix_verification_history_subject", table_name="verification_history")
    op.drop_table("verification_history")
    op.drop_index("ix_kyc_documents_subject", table_name="kyc_documents")
    op.drop_table("kyc_documents")
    op.drop_index(op.f("ix_corporations_program_id"), table_name="corporations")
    op.drop_table("corporations")
