"""programs.mode: every program is live or test (the sandbox), fixed when it is made

Revision ID: 2026_12_03_program_mode
Revises: 2026_11_22_fees
Create Date: 2026-12-03 09:00:00+00:00

Before this, test mode was a server setting (CARDCORE_SANDBOX) that only chose the prefix of new
API keys. Existing programs become:
- test, if they have keys and every one of them (revoked ones included) is `ck_test_`: the
  program was made, and only ever used, on a sandbox server;
- live otherwise. A live program's `ck_test_` keys (a server switched between the two) are
  revoked here: whoever holds one believes it moves play money, and it would move real money.
A trigger refuses any later change of mode: a program's money is either all real or all play.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "2026_12_03_program_mode"
down_revision: str | None = "2026_11_22_fees"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "programs",
        sa.Column("mode", sa.String(length=4), server_default="live", nullable=False),
    )
    op.create_check_constraint("mode_known", "programs", "mode IN ('live', 'test')")
    op.execute(
        """
        UPDATE programs p SET mode = 'test'
        WHERE EXISTS (SELECT 1 FROM api_keys k WHERE k.program_id = p.id)
          AND NOT EXISTS (
              SELECT 1 FROM api_keys k
              WHERE k.program_id = p.id AND left(k.display_prefix, 8) <> 'ck_test_'
          )
        """
    )
    op.execute(
        """
        UPDATE api_keys k SET revoked_at = now()
        FROM programs p
        WHERE p.id = k.program_id
          AND k.revoked_at IS NULL
          AND left(k.display_prefix, 8) <> 'ck_' || p.mode || '_'
        """
    )
    op.execute(
        """
        CREATE FUNCTION programs_mode_is_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'a program''s mode never changes (program %)', OLD.id
                USING ERRCODE = 'check_violation';
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER programs_mode_is_fixed BEFORE UPDATE OF mode ON programs
        FOR EACH ROW WHEN (OLD.mode IS DISTINCT FROM NEW.mode)
        EXECUTE FUNCTION programs_mode_is_fixed()
        """
    )


def downgrade() -> None:
    # Keys revoked by the upgrade stay revoked: bringing them back would undo the fix.
    op.execute("DROP TRIGGER programs_mode_is_fixed ON programs")
    op.execute("DROP FUNCTION programs_mode_is_fixed()")
    op.drop_constraint(op.f("ck_programs_mode_known"), "programs", type_="check")
    op.drop_column("programs", "mode")
