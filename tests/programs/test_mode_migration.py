"""The migration that gave programs a mode, on a database as it was just before it: programs made on
a sandbox server become test programs, and no live program keeps a key that claims to be test."""

import asyncio
import secrets
import uuid

import asyncpg
from sqlalchemy.engine import URL

from cardcore.cli import alembic_config, run_migrations
from tests.harness import asyncpg_dsn

REVISION = "2026_12_03_program_mode"


def _upgrade(url: URL, target: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), target)


def _revision_before() -> str:
    from alembic.script import ScriptDirectory

    before = ScriptDirectory.from_config(alembic_config()).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    return before


async def test_programs_get_the_mode_their_keys_show(scratch_url: URL) -> None:
    await asyncio.to_thread(_upgrade, scratch_url, _revision_before())
    dsn, extra = asyncpg_dsn(scratch_url)
    db = await asyncpg.connect(dsn, **extra)
    try:
        programs = {name: uuid.uuid4() for name in ("sandbox", "switched", "live", "keyless")}
        for name, program_id in programs.items():
            await db.execute("INSERT INTO programs (id, name) VALUES ($1, $2)", program_id, name)
        keys = {
            # Made on a sandbox server, one key revoked since: a test program.
            "sandbox-1": ("sandbox", "ck_test_", False),
            "sandbox-2": ("sandbox", "ck_test_", True),
            # A server switched between modes: live money, so live, and its test key goes.
            "switched-live": ("switched", "ck_live_", False),
            "switched-test": ("switched", "ck_test_", False),
            "live-1": ("live", "ck_live_", False),
        }
        key_ids = {name: uuid.uuid4() for name in keys}
        for name, (program, prefix, revoked) in keys.items():
            await db.execute(
                "INSERT INTO api_keys (id, program_id, name, secret_hash, display_prefix, "
                "revoked_at) VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END)",
                key_ids[name],
                programs[program],
                name,
                secrets.token_bytes(32),
                prefix + "abcd",
                revoked,
            )

        await asyncio.to_thread(run_migrations, scratch_url)

        modes = {
            row["name"]: row["mode"] for row in await db.fetch("SELECT name, mode FROM programs")
        }
        assert modes == {
            "sandbox": "test",
            "switched": "live",
            "live": "live",
            "keyless": "live",
        }
        active = {
            row["name"]
            for row in await db.fetch("SELECT name FROM api_keys WHERE revoked_at IS NULL")
        }
        assert active == {"sandbox-1", "switched-live", "live-1"}
        # A new program is live unless made otherwise.
        made = await db.fetchval(
            "INSERT INTO programs (id, name) VALUES ($1, 'new') RETURNING mode", uuid.uuid4()
        )
        assert made == "live"
    finally:
        await db.close()
