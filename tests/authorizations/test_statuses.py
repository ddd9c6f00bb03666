"""Statuses are typed: a card's, a transaction's and a fee line's status is read back as its
enum member, and a value the enum does not have is refused before it reaches the database."""

import pytest
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.models import Card, CardStatus, CardTransaction, TransactionStatus
from tests.authorizations.network import authorize
from tests.factories import Partner, World


async def test_statuses_are_read_back_as_members(
    client: AsyncClient,
    session: AsyncSession,
    world: World,
) -> None:
    approved = await authorize(client, world, amount=1_000)
    row = await session.get(CardTransaction, approved["authorization_id"])
    assert row is not None
    await session.refresh(row)
    assert row.status is TransactionStatus.PENDING
    card = await session.get(Card, world.card.id)
    assert card is not None
    await session.refresh(card)
    assert card.status is CardStatus.ACTIVE
    # Queries compare with members and with their values alike.
    assert await session.scalar(select(Card.id).where(Card.status == "ACTIVE")) == card.id


async def test_a_status_the_enum_does_not_have_is_refused(
    session: AsyncSession,
    world: World,
) -> None:
    card = await session.get(Card, world.card.id)
    assert card is not None
    card.status = "MISPLACED"  # type: ignore[assignment]  # what the type forbids, at run time
    with pytest.raises(StatementError, match="MISPLACED"):
        await session.flush()


async def test_a_list_filtered_on_an_unknown_status_is_a_clear_error(
    client: AsyncClient,
    partner: Partner,
    world: World,
) -> None:
    frozen = await client.get("/v1/cards", params={"status": "FROZEN"}, headers=partner.headers)
    assert (frozen.status_code, frozen.json()["data"]) == (200, [])
    active = await client.get("/v1/cards", params={"status": "ACTIVE"}, headers=partner.headers)
    assert [card["id"] for card in active.json()["data"]] == [world.card.id]
    # The same for every list filtered on a status (the webhook's id need not exist: the query
    # is refused first).
    for path in (
        "/v1/cards",
        "/v1/transactions",
        "/v1/card-reports",
        "/v1/users",
        "/v1/webhooks/whk_0000000000000000000000000000/messages",
    ):
        unknown = await client.get(path, params={"status": "MISPLACED"}, headers=partner.headers)
        assert unknown.status_code == 422, (path, unknown.text)
        assert unknown.json()["code"] == "VALIDATION_ERROR"
