"""the card processor's functions plan their statements once, by key

Revision ID: 2026_12_03_generic_plans
Revises: 2026_12_03_follow_ups
Create Date: 2026-12-03 16:00:00+00:00

Every statement inside the authorization's and the follow-ups' functions looks rows up by key, so
one plan serves every message. Left to choose, PostgreSQL kept planning most of them afresh on
each call (a plan made for the call's values looked cheaper than the generic one, as it does for
statements with parameters inside PL/pgSQL): planning was about a tenth of an authorization's
PostgreSQL time. `plan_cache_mode` set on the four entry points holds for everything they call.

A plan kept is made once per connection, from the statistics of that moment: made while a table
was still empty (a new database, a table a migration just created), it would read the table
from end to end until the next ANALYZE, getting slower with every row. `enable_seqscan` off keeps
those plans on the keys whatever the statistics say; nothing these functions read is ever
better read whole.
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
        op.execute(f"ALTER FUNCTION {signature} SET enable_seqscan = off")


def downgrade() -> None:
    for signature in ENTRY_POINTS:
        op.execute(f"ALTER FUNCTION {signature} RESET ALL")
