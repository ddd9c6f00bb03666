"""zone PIN keys: the keys a program shares with its card processor for PIN blocks

Revision ID: 2026_12_03_pin_zone_pin_keys
Revises: 2026_12_03_program_mode
Create Date: 2026-12-03 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2026_12_03_pin_zone_pin_keys"
down_revision: str | None = "2026_12_03_program_mode"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "zone_pin_keys",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("algorithm", sa.String(length=10), nullable=False),
        sa.Column("key_bits", sa.SmallInteger(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("kcv", sa.String(length=6), nullable=False),
        sa.Column("installed_by", sa.String(length=64), nullable=True),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usable_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_zone_pin_keys_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_zone_pin_keys")),
    )
    op.create_index(
        op.f("ix_zone_pin_keys_program_id"), "zone_pin_keys", ["program_id"], unique=False
    )
    op.create_index(
        "uq_zone_pin_keys_current",
        "zone_pin_keys",
        ["program_id"],
        unique=True,
        postgresql_where=sa.text("replaced_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_zone_pin_keys_current",
        table_name="zone_pin_keys",
        postgresql_where=sa.text("replaced_at IS NULL"),
    )
    op.drop_index(op.f("ix_zone_pin_keys_program_id"), table_name="zone_pin_keys")
    op.drop_table("zone_pin_keys")
