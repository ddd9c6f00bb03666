"""Clearing above the hold within the merchant category's tolerance, force-post clearings,
refunds with and without their purchase, and programs whose partner DEPOSIT balance is charged
alongside every hold."""

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances import service as balances
from cardcore.ledger import service as ledger
from cardcore.ledger.verify import verify
from cardcore.models import Event, PartnerBalance, Program
from tests.authorizations.network import authorize, available, balance_of, body, follow_up
from tests.factories import Partner, World, make_world

RESTAURANT = {"name": "Bistro", "mcc": "5812", "country": "PL", "city": "Kraków"}


async def test_clearing_above_the_hold_within_the_tolerance(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    dinner = await authorize(client, world, amount=1_000, merchant=RESTAURANT)
    too_much = await follow_up(
        client, world, "clearings", authorization_id=dinner["authorization_id"], amount=1_201
    )
    assert (too_much.status_code, too_much.json()["code"]) == (422, "CLEARING_ABOVE_TOLERANCE")
    assert await available(client, partner, world) == 9_000, "the hold is as it was"
    # 20 % for restaurants: a 2.00 tip on 10.00 clears.
    tipped = await follow_up(
        client, world, "clearings", authorization_id=dinner["authorization_id"], amount=1_200
    )
    assert tipped.status_code == 200, tipped.text
    assert (await balance_of(client, partner, world))["total"] == 8_800
    detail = (
        await client.get(f"/v1/transactions/{dinner['authorization_id']}", headers=partner.headers)
    ).json()["data"]
    assert (detail["status"], detail["settled_amount"]) == ("SETTLED", 1_200)

    # A grocery clears at most what it held.
    groceries = await authorize(client, world, amount=1_000)
    over = await follow_up(
        client, world, "clearings", authorization_id=groceries["authorization_id"], amount=1_001
    )
    assert over.json()["code"] == "CLEARING_ABOVE_TOLERANCE"
    # No amount clears what is held.
    whole = await follow_up(
        client, world, "clearings", authorization_id=groceries["authorization_id"]
    )
    assert (whole.json()["approved"], (await balance_of(client, partner, world))["total"]) == (
        True,
        7_800,
    )

    # A program may set its own tolerance per MCC.
    await session.execute(
        update(Program)
        .where(Program.id == partner.program_id)
        .values(clearing_tolerances={"5411": 500})
    )
    await session.commit()
    small = await authorize(client, world, amount=1_000)
    assert (
        await follow_up(
            client, world, "clearings", authorization_id=small["authorization_id"], amount=1_050
        )
    ).status_code == 200
    assert await verify(session) == []


async def test_excess_the_balance_cannot_cover_leaves_the_hold(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    dinner = await authorize(client, world, amount=9_000, merchant=RESTAURANT)
    await authorize(client, world, amount=900)  # 100 left
    short = await follow_up(
        client, world, "clearings", authorization_id=dinner["authorization_id"], amount=9_101
    )
    assert (short.status_code, short.json()["code"]) == (409, "INSUFFICIENT_FUNDS")
    balance = await balance_of(client, partner, world)
    assert (balance["available"], balance["pending"]) == (100, 9_900)
    fits = await follow_up(
        client, world, "clearings", authorization_id=dinner["authorization_id"], amount=9_100
    )
    assert fits.status_code == 200, fits.text
    assert (await balance_of(client, partner, world))["available"] == 0
    assert await verify(session) == []


async def test_force_post_clearing_without_authorization(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    message = body(world, amount=2_500)
    posted = await client.post(
        "/v1/network/force-post-clearings", json=message, headers=world.network.headers
    )
    assert posted.status_code == 200, posted.text
    assert (posted.json()["approved"], posted.json()["available_balance"]) == (True, 7_500)
    again = await client.post(
        "/v1/network/force-post-clearings", json=message, headers=world.network.headers
    )
    assert again.json() == posted.json(), "a retransmission posts once"
    # A locked card still settles: the network already paid the merchant.
    assert (
        await client.post(
            f"/v1/cards/{world.card.id}/lock",
            json={"reason_code": 2},
            headers=partner.headers,
        )
    ).status_code == 200
    late = await client.post(
        "/v1/network/force-post-clearings",
        json=body(world, amount=500),
        headers=world.network.headers,
    )
    assert late.json()["approved"] is True
    # More than the balance holds is recorded as declined; the balance never goes negative.
    short = await client.post(
        "/v1/network/force-post-clearings",
        json=body(world, amount=7_001),
        headers=world.network.headers,
    )
    assert (short.json()["approved"], short.json()["response_code"]) == (False, "51")
    assert (await balance_of(client, partner, world))["total"] == 7_000
    listed = (
        await client.get(
            "/v1/transactions", params={"card_id": world.card.id}, headers=partner.headers
        )
    ).json()["data"]
    assert sorted((t["kind"], t["status"]) for t in listed) == [
        ("FORCE_POST", "DECLINED"),
        ("FORCE_POST", "SETTLED"),
        ("FORCE_POST", "SETTLED"),
    ]
    assert await verify(session) == []


async def test_refunds_linked_capped_and_unlinked(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    purchase = await authorize(client, world, amount=3_000)
    await follow_up(client, world, "clearings", authorization_id=purchase["authorization_id"])
    first = await follow_up(
        client, world, "refunds", authorization_id=purchase["authorization_id"], amount=2_000
    )
    assert (first.status_code, first.json()["available_balance"]) == (200, 9_000)
    beyond = await follow_up(
        client, world, "refunds", authorization_id=purchase["authorization_id"], amount=1_001
    )
    assert beyond.json()["code"] == "VALIDATION_ERROR", "refunds add up to the purchase at most"
    credit = await follow_up(
        client,
        world,
        "refunds",
        card_id=world.card.id,
        amount=700,
        currency="EUR",
        merchant=RESTAURANT,
    )
    assert (credit.json()["approved"], credit.json()["available_balance"]) == (True, 9_700)
    neither = await follow_up(client, world, "refunds", amount=700)
    assert neither.status_code == 422
    assert await verify(session) == []


async def _deposit(
    session: AsyncSession, partner: Partner, amount: int, threshold: int | None = None
) -> PartnerBalance:
    deposit = await balances.create_partner_balance(
        session,
        program_id=partner.program_id,
        type="DEPOSIT",
        currency="EUR",
        low_balance_threshold=threshold,
    )
    await balances.reload_partner_balance(session, deposit, amount=amount, reference="wire")
    await session.commit()
    return deposit


async def test_partner_deposit_is_charged_with_every_hold(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    deposit = await _deposit(session, partner, 5_000)

    async def deposit_available() -> int:
        return (await ledger.totals(session, deposit.ledger_account_id)).available

    hold = await authorize(client, world, amount=3_000)
    assert hold["approved"] is True
    assert (await deposit_available(), await available(client, partner, world)) == (2_000, 7_000)
    # The deposit runs out before the user's money does: declined, nothing held.
    short = await authorize(client, world, amount=2_001)
    assert (short["response_code"], short["decline_reason"]) == (
        "51",
        "PARTNER_DEPOSIT_INSUFFICIENT",
    )
    assert (await deposit_available(), await available(client, partner, world)) == (2_000, 7_000)
    # Raising, releasing and settling move both legs together.
    raised = await follow_up(
        client,
        world,
        "incremental-authorizations",
        authorization_id=hold["authorization_id"],
        amount=2_001,
    )
    assert raised.json()["decline_reason"] == "PARTNER_DEPOSIT_INSUFFICIENT"
    await follow_up(
        client, world, "reversals", authorization_id=hold["authorization_id"], amount=1_000
    )
    assert (await deposit_available(), await available(client, partner, world)) == (3_000, 8_000)
    await follow_up(
        client, world, "clearings", authorization_id=hold["authorization_id"], amount=1_500
    )
    assert (await deposit_available(), await available(client, partner, world)) == (3_500, 8_500)
    await follow_up(client, world, "refunds", authorization_id=hold["authorization_id"], amount=500)
    assert (await deposit_available(), await available(client, partner, world)) == (4_000, 9_000)
    # The user's money went to the partner, who paid the network from its deposit.
    recovery = await ledger.system_account(
        session, program_id=partner.program_id, currency="EUR", kind="partner_deposit_recovery"
    )
    assert (await ledger.totals(session, recovery.id)).posted_credit_balance == 1_000
    assert await verify(session) == []


async def test_hold_expiry_is_its_own_event(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    from cardcore.authorizations.expiry import expire_now

    await _deposit(session, partner, 5_000)
    hold = await authorize(client, world, amount=1_000)
    await expire_now(
        session, program_id=partner.program_id, transaction_id=hold["authorization_id"]
    )
    await session.commit()
    assert await available(client, partner, world) == 10_000
    types = set(
        await session.scalars(select(Event.type).where(Event.object_id == hold["authorization_id"]))
    )
    assert types == {"authorization.decided", "authorization.expired"}
    assert await verify(session) == []


async def test_network_ids_belong_to_one_program_and_one_message(
    client: AsyncClient,
    app: FastAPI,
    partner: Partner,
    other_partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    ids = {"network_transaction_id": "SAME-1"}
    mine = await authorize(client, world, amount=1_000, network=ids)
    theirs_world = await make_world(app, other_partner)
    theirs = await authorize(client, theirs_world, amount=50, network=ids)
    assert theirs["authorization_id"] != mine["authorization_id"]
    assert (theirs["approved"], theirs["available_balance"]) == (True, 9_950)

    # The same ids on a different message are refused, not answered with the first one.
    changed = await client.post(
        "/v1/network/authorizations",
        json=body(world, amount=999, network=ids),
        headers=world.network.headers,
    )
    assert (changed.status_code, changed.json()["code"]) == (409, "DUPLICATE_REQUEST_ID")
    other = await authorize(client, world, amount=100)
    reversal_ids = {"network_transaction_id": "rev-same"}
    first = await client.post(
        "/v1/network/reversals",
        json={"authorization_id": mine["authorization_id"], "network": reversal_ids},
        headers=world.network.headers,
    )
    assert first.status_code == 200
    elsewhere = await client.post(
        "/v1/network/reversals",
        json={"authorization_id": other["authorization_id"], "network": reversal_ids},
        headers=world.network.headers,
    )
    assert elsewhere.json()["code"] == "DUPLICATE_REQUEST_ID"
    # A refund needs a settled purchase.
    pending = await follow_up(
        client, world, "refunds", authorization_id=other["authorization_id"], amount=10
    )
    assert (pending.status_code, pending.json()["code"]) == (409, "TRANSACTION_NOT_SETTLED")
    assert await verify(session) == []


async def test_card_spending_below_the_deposit_threshold_warns_once(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    deposit = await _deposit(session, partner, 5_000, threshold=3_000)

    async def warnings() -> int:
        found = await session.scalars(
            select(Event).where(Event.type == "partner_balance.low", Event.object_id == deposit.id)
        )
        return len(list(found))

    assert (await authorize(client, world, amount=1_500))["approved"] is True
    assert await warnings() == 0, "3,500 left: above the line"
    assert (await authorize(client, world, amount=1_000))["approved"] is True
    assert await warnings() == 1, "2,500 left: crossed"
    assert (await authorize(client, world, amount=1_000))["approved"] is True
    assert await warnings() == 1, "already below: no second warning"


async def test_force_post_on_a_deposit_program_moves_both_legs_or_neither(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    """The deposit leg and the user's leg of a force post are linked: when either side cannot
    pay, neither moves, and the answer names the side."""
    deposit = await _deposit(session, partner, 3_000)

    async def both() -> tuple[int, int]:
        deposit_left = (await ledger.totals(session, deposit.ledger_account_id)).available
        return deposit_left, await available(client, partner, world)

    async def force_post(amount: int) -> dict[str, Any]:
        posted = await client.post(
            "/v1/network/force-post-clearings",
            json=body(world, amount=amount),
            headers=world.network.headers,
        )
        assert posted.status_code == 200, posted.text
        return posted.json()  # type: ignore[no-any-return]

    assert (await force_post(2_000))["approved"] is True
    assert await both() == (1_000, 8_000)
    # The deposit cannot pay: the user's leg, which could, does not move either.
    short = await force_post(1_001)
    assert (short["response_code"], short["decline_reason"]) == (
        "51",
        "PARTNER_DEPOSIT_INSUFFICIENT",
    )
    assert await both() == (1_000, 8_000)
    # The user cannot pay: the deposit's leg, which could, is not taken.
    await balances.reload_partner_balance(session, deposit, amount=20_000, reference="wire")
    await session.commit()
    broke = await force_post(8_001)
    assert (broke["response_code"], broke["decline_reason"]) == ("51", "INSUFFICIENT_FUNDS")
    assert await both() == (21_000, 8_000)
    assert await verify(session) == []
