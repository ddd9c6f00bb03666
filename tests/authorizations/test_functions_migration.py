"""The migrations of the card processor's functions go down and up again: down past the
follow-ups' functions, the authorization's read and write are the ones before them (their own key
check and ledger loop) and the shared functions are gone; up again, the same as a fresh upgrade.
Down past the generic plans, the entry points choose their plans again."""

import asyncio
from typing import Any

import asyncpg
from alembic import command
from sqlalchemy.engine import URL

from cardcore.cli import alembic_config, run_migrations
from tests.harness import asyncpg_dsn

REVISION = "2026_12_03_follow_ups"
BEFORE = "2026_12_03_auth_functions"


async def _by_name(url: URL, column: str, where: str) -> dict[str, Any]:
    """`column` of the functions `where` picks, by name."""
    dsn, extra = asyncpg_dsn(url)
    db = await asyncpg.connect(dsn, **extra)
    try:
        rows = await db.fetch(f"SELECT proname, {column} FROM pg_proc WHERE {where}")  # noqa: S608
        return {row["proname"]: row[column] for row in rows}
    finally:
        await db.close()


async def _functions(url: URL) -> dict[str, int]:
    """The functions of the two migrations, by name, with their number of arguments."""
    return await _by_name(
        url, "pronargs", "proname LIKE ANY (ARRAY['card_%', 'ledger_%', 'network_key_check'])"
    )


async def test_down_and_up_again(scratch_url: URL) -> None:
    await asyncio.to_thread(run_migrations, scratch_url)
    head = await _functions(scratch_url)
    assert head["card_authorization_context"] == 11
    assert head["card_authorization_write"] == 21
    assert {"ledger_linked", "card_follow_up_write", "network_key_check"} <= set(head)

    config = alembic_config(scratch_url)
    await asyncio.to_thread(command.downgrade, config, BEFORE)
    before = await _functions(scratch_url)
    assert before["card_authorization_context"] == 10
    assert before["card_authorization_write"] == 14
    assert not {"ledger_linked", "ledger_linked_write", "card_follow_up_context"} & set(before)
    assert "network_key_check" not in before

    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _functions(scratch_url) == head


async def _plan_modes(url: URL) -> dict[str, list[str] | None]:
    return await _by_name(
        url,
        "proconfig",
        "proname IN ('card_authorization_context', 'card_authorization_write',"
        " 'card_follow_up_context', 'card_follow_up_write', 'card_authorization_context_many',"
        " 'card_authorization_write_many', 'card_follow_up_context_many',"
        " 'card_follow_up_write_many')",
    )


async def test_the_entry_points_plan_once(scratch_url: URL) -> None:
    """The functions the card processor's messages call keep one plan per statement, on the keys
    (what they call inherits both); down a revision, PostgreSQL chooses again."""
    await asyncio.to_thread(run_migrations, scratch_url)
    generic = ["plan_cache_mode=force_generic_plan", "enable_seqscan=off"]
    assert await _plan_modes(scratch_url) == dict.fromkeys(
        (
            "card_authorization_context",
            "card_authorization_write",
            "card_follow_up_context",
            "card_follow_up_write",
            "card_authorization_context_many",
            "card_authorization_write_many",
            "card_follow_up_context_many",
            "card_follow_up_write_many",
        ),
        generic,
    )
    await asyncio.to_thread(command.downgrade, alembic_config(scratch_url), REVISION)
    assert set((await _plan_modes(scratch_url)).values()) == {None}


async def test_many_at_a_time_down_and_up_again(scratch_url: URL) -> None:
    """Down before the functions that take many messages at a time, they and their argument
    types are gone and the rest is as it was; up again, they are back."""
    await asyncio.to_thread(run_migrations, scratch_url)
    head = await _functions(scratch_url)
    many = {name for name in head if name.endswith("_many")}
    assert many == {
        "card_authorization_context_many",
        "card_authorization_write_many",
        "card_follow_up_context_many",
        "card_follow_up_write_many",
    }
    assert {head[name] for name in many} == {1}
    config = alembic_config(scratch_url)
    await asyncio.to_thread(command.downgrade, config, "2026_12_03_card_spend")
    before = await _functions(scratch_url)
    assert before == {name: count for name, count in head.items() if name not in many}
    assert await _argument_types(scratch_url) == set()
    await asyncio.to_thread(command.upgrade, config, "head")
    assert await _functions(scratch_url) == head
    assert await _argument_types(scratch_url) == {
        "card_authorization_ask",
        "card_authorization_call",
        "card_follow_up_ask",
        "card_follow_up_call",
    }


async def _argument_types(url: URL) -> set[str]:
    dsn, extra = asyncpg_dsn(url)
    db = await asyncpg.connect(dsn, **extra)
    try:
        rows = await db.fetch(
            "SELECT typname FROM pg_type"
            " WHERE typname LIKE ANY (ARRAY['card_authorization_%', 'card_follow_up_%'])"
        )
        return {row["typname"] for row in rows}
    finally:
        await db.close()
