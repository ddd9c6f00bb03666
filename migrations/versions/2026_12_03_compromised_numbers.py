"""compromised card numbers and one open report per card

Revision ID: 2026_12_03_i16_reports
Revises: 2026_12_03_pin_zone_pin_keys
Create Date: 2026-12-03 07:00:00+00:00

A number reported lost, stolen or used in fraud goes into `compromised_pans` for good, a card has
at most one OPEN report, and cards are indexed by number whether replaced or not. On a database
that already has reports this migration also:

- supersedes all but one OPEN report per card (the latest lost/stolen/fraud report if there is
  one, else the latest), so the unique index can be built;
- records every number already reported lost, stolen or used in fraud, or locked 1 or 2;
- locks any ACTIVE, INACTIVE or FROZEN card that carries such a number (an older same-number
  replacement could have brought one back), with a `card.status_changed` event for each.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from ulid import ULID

revision: str = "2026_12_03_i16_reports"
down_revision: str | None = "2026_12_03_pin_zone_pin_keys"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The schemes' lock codes, as cards/lifecycle.py puts them on a compromised number's cards.
_LOCKS = {"LOST": (1, "CARD_LOST"), "STOLEN": (2, "CARD_STOLEN"), "FRAUD": (7, "SUSPECTED_FRAUD")}


def upgrade() -> None:
    # Lookups by number over every card, replaced ones included: the partial unique index
    # (current cards only) cannot serve them.
    op.create_index("ix_cards_network_pan_hash", "cards", ["network", "pan_hash"])
    op.add_column(
        "card_reports",
        sa.Column("superseded_by", postgresql.UUID(as_uuid=True), nullable=True),
    )
    op.execute(
        """
        WITH ranked AS (
            SELECT id,
                   first_value(id) OVER w AS kept,
                   row_number() OVER w AS n
            FROM card_reports
            WHERE status = 'OPEN'
            WINDOW w AS (
                PARTITION BY card_id
                ORDER BY (reason IN ('LOST', 'STOLEN', 'FRAUD')) DESC, created_at DESC, id DESC
            )
        )
        UPDATE card_reports r
        SET status = 'SUPERSEDED', superseded_by = ranked.kept, resolved_at = now()
        FROM ranked
        WHERE r.id = ranked.id AND ranked.n > 1
        """
    )
    op.create_index(
        "uq_card_reports_one_open",
        "card_reports",
        ["card_id"],
        unique=True,
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    op.create_table(
        "compromised_pans",
        sa.Column("network", sa.String(length=20), nullable=False),
        sa.Column("pan_hash", sa.LargeBinary(), nullable=False),
        sa.Column("program_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("card_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["card_id"], ["cards.id"], name=op.f("fk_compromised_pans_card_id_cards")
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_compromised_pans_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("network", "pan_hash", name=op.f("pk_compromised_pans")),
    )
    op.execute(
        """
        INSERT INTO compromised_pans (network, pan_hash, program_id, card_id, reason, created_at)
        SELECT DISTINCT ON (c.network, c.pan_hash)
               c.network, c.pan_hash, c.program_id, c.id, r.reason, r.created_at
        FROM card_reports r JOIN cards c ON c.id = r.card_id
        WHERE r.reason IN ('LOST', 'STOLEN', 'FRAUD')
        ORDER BY c.network, c.pan_hash, r.created_at
        ON CONFLICT DO NOTHING
        """
    )
    op.execute(
        """
        INSERT INTO compromised_pans (network, pan_hash, program_id, card_id, reason)
        SELECT DISTINCT ON (network, pan_hash)
               network, pan_hash, program_id, id,
               CASE lock_reason WHEN 1 THEN 'LOST' ELSE 'STOLEN' END
        FROM cards
        WHERE status = 'LOCKED' AND lock_reason IN (1, 2)
        ORDER BY network, pan_hash, id
        ON CONFLICT DO NOTHING
        """
    )
    _lock_live_carriers()


def _lock_live_carriers() -> None:
    bind = op.get_bind()
    live = bind.execute(
        sa.text(
            """
            SELECT c.id, c.program_id, c.status, p.reason
            FROM cards c
            JOIN compromised_pans p ON p.network = c.network AND p.pan_hash = c.pan_hash
            WHERE c.status IN ('ACTIVE', 'INACTIVE', 'FROZEN')
            ORDER BY c.id
            FOR UPDATE OF c
            """
        )
    ).all()
    for card_uuid, program_uuid, status, reason in live:
        code, name = _LOCKS[reason]
        bind.execute(
            sa.text(
                """
                UPDATE cards
                SET status = 'LOCKED', lock_reason = :code,
                    previous_status = CASE WHEN status IN ('ACTIVE', 'INACTIVE')
                                           THEN status ELSE previous_status END
                WHERE id = :id
                """
            ),
            {"code": code, "id": card_uuid},
        )
        card_id = "card_" + str(ULID.from_uuid(card_uuid)).lower()
        data = {
            "id": card_id,
            "from_status": status,
            "to_status": "LOCKED",
            "reason": name,
            "actor": "system",
            "lock_reason": code,
        }
        bind.execute(
            sa.text(
                """
                INSERT INTO events (id, program_id, type, version, object_id, data)
                VALUES (:id, :program_id, 'card.status_changed', 1, :object_id,
                        CAST(:data AS jsonb))
                """
            ),
            {
                "id": ULID().to_uuid(),
                "program_id": program_uuid,
                "object_id": card_id,
                "data": json.dumps(data),
            },
        )


def downgrade() -> None:
    op.drop_table("compromised_pans")
    op.drop_index("ix_cards_network_pan_hash", table_name="cards")
    op.drop_index(
        "uq_card_reports_one_open",
        table_name="card_reports",
        postgresql_where=sa.text("status = 'OPEN'"),
    )
    op.drop_column("card_reports", "superseded_by")
