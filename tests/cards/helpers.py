"""Issuing cards through the API, as a partner does, from a `CardProgram` (factories.py); and a
program with cards made at head, for the migration tests."""

import asyncio
from typing import Any

from alembic import command
from alembic.script import ScriptDirectory
from httpx import AsyncClient, Response
from sqlalchemy.engine import URL

from cardcore.app import create_app
from cardcore.cli import alembic_config
from cardcore.config import Settings
from cardcore.db import create_engine, create_sessionmaker
from tests.factories import CardProgram, Partner, make_card, make_card_program, make_partner
from tests.kit.jose import encrypted_post


def _card_body(program: CardProgram, body: dict[str, Any]) -> dict[str, Any]:
    """A virtual card of the program's product for its holder, on their balance, unless `body`
    says otherwise."""
    return {
        "type": "VIRTUAL",
        "product_id": program.product.id,
        "user_id": program.holder.user_id,
        "balance_id": program.holder.balance_id,
        **body,
    }


async def issue(
    client: AsyncClient, partner: Partner, program: CardProgram, **body: Any
) -> Response:
    """POST /v1/cards."""
    return await client.post("/v1/cards", json=_card_body(program, body), headers=partner.headers)


async def issue_encrypted(
    client: AsyncClient, partner: Partner, program: CardProgram, query: str = "", **body: Any
) -> Response:
    """POST /v1/cards with the body as a JWE: the only way a PIN is taken at issue."""
    return await encrypted_post(
        client, f"/v1/cards{query}", _card_body(program, body), partner.headers
    )


async def cards_at_head(url: URL, settings: Settings, count: int) -> tuple[str, list[str]]:
    """A program with `count` ACTIVE virtual cards, made at head (before a test migrates down)."""
    engine = create_engine(url, settings)
    maker = create_sessionmaker(engine)
    app = create_app(settings, sessionmaker=maker)
    try:
        async with maker() as session:
            partner = await make_partner(session, "Before a migration")
        program = await make_card_program(app, partner)
        cards = [
            (await make_card(app, partner, program.product, program.holder)).id
            for _ in range(count)
        ]
        return partner.program_id, cards
    finally:
        await engine.dispose()


async def down_before(url: URL, revision: str) -> str:
    """The database migrated down to just before `revision`; that revision's predecessor."""
    config = alembic_config(url)
    before = ScriptDirectory.from_config(config).get_revision(revision).down_revision
    assert isinstance(before, str)
    await asyncio.to_thread(command.downgrade, config, before)
    return before
