"""the card processor's functions plan their statements once

Revision ID: 2026_12_03_generic_plans
Revises: 2026_12_03_follow_ups
Create Date: 2026-12-03 16:00:00+00:00

Every statement inside the authorization's and the follow-ups' functions looks rows up by key, so
one plan serves every message. Left to choose, PostgreSQL kept planning most of them afresh on
each call (a plan made for the call's values looked cheaper than the generic one, as it does for
statements with parameters inside PL/pgSQL): planning was about a tenth of an authorization's
PostgreSQL time. `plan_cache_mode` set on the four entry points holds for everything they call.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "2026_12_03_generic_plans"
down_revision: str | None = "2026_12_03_follow_ups"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENTRY_POINTS = (
    "card_authorization_write(jsonb, jsonb, jsonb, jsonb, jsonb, uuid[], bigint[], bigint[], "
    "bigint[], bigint[], bigint[], uuid, uuid, varchar[], varchar[], timestamptz[], bigint, "
    "bigint, varchar[], timestamptz[], bigint)",
    "card_authorization_context(uuid, uuid, uuid, bytea, varchar, varchar, varchar[], "
    "timestamptz[], timestamptz, interval, boolean)",
    "card_follow_up_write(uuid, jsonb, jsonb, jsonb, jsonb, jsonb, uuid[], bigint[], bigint[], "
    "bigint[], bigint[], bigint[], varchar, uuid, bigint)",
    "card_follow_up_context(uuid, uuid, uuid, varchar, boolean, interval, boolean)",
)


def upgrade() -> None:
    for signature in ENTRY_POINTS:
        op.execute(f"ALTER FUNCTION {signature} SET plan_cache_mode = force_generic_plan")


def downgrade() -> None:
    for signature in ENTRY_POINTS:
        op.execute(f"ALTER FUNCTION {signature} RESET plan_cache_mode")
