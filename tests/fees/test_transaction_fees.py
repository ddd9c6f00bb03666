"""Fees that follow a transaction: card TRANSACTION and FX fees held with the authorization,
repriced by increments and partial reversals, posted by the clearing, released by a reversal
or expiry; force posts charged at once; IBAN TRANSFER fees held with the transfer."""

from typing import Any

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.authorizations.expiry import expire_now
from cardcore.ledger import service as ledger
from cardcore.ledger.verify import verify
from cardcore.models import Balance, Event
from tests.authorizations.network import authorize, available, follow_up
from tests.factories import Partner, World, bearer
from tests.fees.helpers import fees_of, set_schedule

# 0.25 EUR + 1.5 %, at least 0.50 and at most 5.00, on POS; ATM 2.00 + 1 %; FX 2.75 %.
POS = {"EUR": {"fixed": 25, "percent_bps": 150, "minimum": 50, "maximum": 500}}
ATM = {"EUR": {"fixed": 200, "percent_bps": 100}}
SCHEDULE = [
    {"type": "TRANSACTION", "channel": "POS", "prices": POS},
    {
        "type": "TRANSACTION",
        "channel": "ATM",
        "prices": {"EUR": {"fixed": 200, "percent_bps": 100}},
    },
    {"type": "FX", "prices": {"EUR": {"percent_bps": 275}}},
]


async def _fees(client: AsyncClient, partner: Partner, txn: str) -> list[tuple[Any, ...]]:
    return [
        (f["type"], f["status"], f["amount"], f["basis_amount"])
        for f in await fees_of(client, partner.headers, transaction_id=txn)
    ]


async def test_pos_fee_is_held_then_posted_with_the_clearing(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    await set_schedule(client, world.admin.token, SCHEDULE)
    small = await authorize(client, world, amount=1_000)
    # 25 + 1.5 % of 1,000 (15) = 40, raised to the minimum 50; the user holds 1,050 in all.
    assert small["approved"]
    assert small["available_balance"] == 10_000 - 1_050
    assert await _fees(client, partner, small["authorization_id"]) == [
        ("TRANSACTION", "HELD", 50, 1_000)
    ]
    cleared = await follow_up(
        client, world, "clearings", authorization_id=small["authorization_id"]
    )
    assert cleared.status_code == 200, cleared.text
    assert await _fees(client, partner, small["authorization_id"]) == [
        ("TRANSACTION", "CHARGED", 50, 1_000)
    ]
    assert await available(client, partner, world) == 10_000 - 1_050
    # The balance's statement shows the fee as its own line, linked to its fee line.
    fee_id = (await fees_of(client, partner.headers, transaction_id=small["authorization_id"]))[0][
        "id"
    ]
    statement = (
        await client.get(
            f"/v1/balances/{world.card.balance_id}/ledger",
            params={"code": "fee", "kind": "post"},
            headers=partner.headers,
        )
    ).json()["data"]
    assert [(e["direction"], e["amount"], e["fee_id"]) for e in statement] == [
        ("debit", 50, fee_id)
    ]

    big = await authorize(client, world, amount=3_333)
    # 25 + 1.5 % of 3,333 = 49.995 → 50 (half up) → 75.
    assert await _fees(client, partner, big["authorization_id"]) == [
        ("TRANSACTION", "HELD", 75, 3_333)
    ]
    events = (await session.scalars(select(Event.data).where(Event.type == "fee.charged"))).all()
    assert [(e["type"], e["amount"], e["transaction_id"]) for e in events] == [
        ("TRANSACTION", 50, small["authorization_id"])
    ]
    assert await verify(session) == []


async def test_reversal_releases_and_partial_reversal_or_increment_reprices(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    await set_schedule(client, world.admin.token, SCHEDULE)
    held = await authorize(client, world, amount=20_00)
    txn = held["authorization_id"]
    assert await _fees(client, partner, txn) == [("TRANSACTION", "HELD", 55, 2_000)]

    raised = await follow_up(
        client, world, "incremental-authorizations", authorization_id=txn, amount=2_000
    )
    assert raised.json()["approved"] is True
    assert await _fees(client, partner, txn) == [("TRANSACTION", "HELD", 85, 4_000)]
    assert await available(client, partner, world) == 10_000 - 4_085

    part = await follow_up(client, world, "reversals", authorization_id=txn, amount=3_000)
    assert part.status_code == 200, part.text
    assert await _fees(client, partner, txn) == [("TRANSACTION", "HELD", 50, 1_000)]
    assert await available(client, partner, world) == 10_000 - 1_050

    whole = await follow_up(client, world, "reversals", authorization_id=txn)
    assert whole.status_code == 200, whole.text
    assert await _fees(client, partner, txn) == [("TRANSACTION", "RELEASED", 50, 1_000)]
    assert await available(client, partner, world) == 10_000
    assert await verify(session) == []


async def test_no_funds_for_the_fee_no_authorization(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    await set_schedule(client, world.admin.token, SCHEDULE)
    # 9,960 + its fee (25 + 149.4 → 174) is more than the 10,000 there is.
    refused = await authorize(client, world, amount=9_960)
    assert (refused["approved"], refused["response_code"]) == (False, "51")
    assert await _fees(client, partner, refused["authorization_id"]) == []
    assert await available(client, partner, world) == 10_000
    # An increment whose amount and fee growth cannot be paid for (9,900 + 174) is declined
    # and changes nothing.
    first = await authorize(client, world, amount=9_000)
    assert first["approved"]
    assert await available(client, partner, world) == 10_000 - 9_160
    more = await follow_up(
        client,
        world,
        "incremental-authorizations",
        authorization_id=first["authorization_id"],
        amount=900,
    )
    assert (more.json()["approved"], more.json()["response_code"]) == (False, "51")
    assert await _fees(client, partner, first["authorization_id"]) == [
        ("TRANSACTION", "HELD", 160, 9_000)
    ]
    assert await available(client, partner, world) == 10_000 - 9_160
    assert await verify(session) == []


async def test_channels_fx_clearing_above_hold_and_expiry(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    await set_schedule(client, world.admin.token, SCHEDULE)
    ecom = await authorize(client, world, channel="ECOM", amount=1_000)
    assert await _fees(client, partner, ecom["authorization_id"]) == []  # no ECOM fee
    atm = await authorize(client, world, channel="ATM", amount=5_000)
    assert await _fees(client, partner, atm["authorization_id"]) == [
        ("TRANSACTION", "HELD", 250, 5_000)
    ]
    put = await client.put(
        "/v1/admin/fx-rates",
        json={"base": "USD", "quote": "EUR", "rate": "0.9"},
        headers=world.admin.headers,
    )
    assert put.status_code == 200
    foreign = await authorize(client, world, currency="USD", amount=1_000)
    # 10.00 USD → 9.00 EUR; FX 2.75 % of 900 = 24.75 → 25; POS 25 + 13.5 → 39 → minimum 50.
    assert sorted(await _fees(client, partner, foreign["authorization_id"])) == [
        ("FX", "HELD", 25, 900),
        ("TRANSACTION", "HELD", 50, 900),
    ]
    # A restaurant clears 20 % above its hold: the fee is priced on what settled.
    meal = await authorize(
        client, world, amount=1_000, merchant={"name": "Bistro", "mcc": "5812", "country": "PL"}
    )
    cleared = await follow_up(
        client, world, "clearings", authorization_id=meal["authorization_id"], amount=1_200
    )
    assert cleared.status_code == 200, cleared.text
    assert await _fees(client, partner, meal["authorization_id"]) == [
        ("TRANSACTION", "CHARGED", 50, 1_200)
    ]
    expired = await expire_now(
        session, program_id=partner.program_id, transaction_id=atm["authorization_id"]
    )
    await session.commit()
    assert expired["held_amount"] == 0
    assert await _fees(client, partner, atm["authorization_id"]) == [
        ("TRANSACTION", "RELEASED", 250, 5_000)
    ]
    assert await verify(session) == []


async def test_force_post_charges_its_fee_or_skips_it(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    await set_schedule(client, world.admin.token, SCHEDULE)

    async def force(amount: int) -> dict[str, Any]:
        response = await follow_up(
            client,
            world,
            "force-post-clearings",
            card_id=world.card.id,
            amount=amount,
            currency="EUR",
            channel="POS",
            entry_mode="CHIP",
            merchant={"name": "Offline", "mcc": "5411", "country": "PL"},
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    first = await force(2_000)
    assert await _fees(client, partner, first["authorization_id"]) == [
        ("TRANSACTION", "CHARGED", 55, 2_000)
    ]
    # What is left pays the merchant but not the fee: the network has paid, the fee is skipped.
    rest = await available(client, partner, world)
    second = await force(rest)
    assert second["approved"] is True
    assert await _fees(client, partner, second["authorization_id"]) == [
        ("TRANSACTION", "SKIPPED", 25 + (rest * 150 + 5_000) // 10_000, rest)
    ]
    assert await available(client, partner, world) == 0
    # The cardholder sees their own fees, and another user's session sees none of them.
    token = (
        await client.post(
            f"/v1/users/{world.card.user_id}/sessions", json={}, headers=partner.headers
        )
    ).json()["data"]["access_token"]
    mine = (await client.get("/v1/me/fees", headers=bearer(token))).json()["data"]
    assert sorted(f["status"] for f in mine) == ["CHARGED", "SKIPPED"]
    stranger = (await client.post("/v1/users", json={}, headers=partner.headers)).json()["data"]
    other = (
        await client.post(f"/v1/users/{stranger['id']}/sessions", json={}, headers=partner.headers)
    ).json()["data"]["access_token"]
    assert (await client.get("/v1/me/fees", headers=bearer(other))).json()["data"] == []
    assert await verify(session) == []


async def test_partial_reversal_on_a_balance_a_fee_took_below_zero(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    """A smaller hold replacing a larger one never leaves the balance worse off, so it goes
    through even when an allowed fee overdraft took the balance below zero in between."""
    await set_schedule(client, world.admin.token, SCHEDULE)
    held = await authorize(client, world, amount=6_000)
    assert await available(client, partner, world) == 10_000 - 6_115
    account = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == world.card.balance_id)
    )
    assert account is not None
    revenue = await ledger.system_account_id(
        session, program_id=partner.program_id, currency="EUR", kind="fee_revenue"
    )
    await ledger.transfer(
        session,
        program_id=partner.program_id,
        debit_account_id=account,
        credit_account_id=revenue,
        amount=3_885 + 300,
        currency="EUR",
        code="fee",
        overdraft_limit=500,
    )
    assert await available(client, partner, world) == -300
    part = await follow_up(
        client, world, "reversals", authorization_id=held["authorization_id"], amount=1_000
    )
    assert part.status_code == 200, part.text
    # 5,000 held + its fee 100 replace 6,000 + 115: 1,015 back.
    assert await available(client, partner, world) == -300 + 1_015
    assert await _fees(client, partner, held["authorization_id"]) == [
        ("TRANSACTION", "HELD", 100, 5_000)
    ]
    assert await verify(session) == []


async def test_iban_transfer_fee_is_held_posted_or_released(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    await set_schedule(
        client,
        world.admin.token,
        [{"type": "TRANSFER", "prices": {"EUR": {"fixed": 100, "percent_bps": 50}}}],
    )
    owner = world.card.user_id
    contact = (
        await client.post(
            "/v1/payment-contacts",
            json={"user_id": owner, "iban": "PL61109010140000071219812874", "holder_name": "Z K"},
            headers=partner.headers,
        )
    ).json()["data"]

    async def send(amount: int) -> Any:
        return await client.post(
            "/v1/transfers",
            json={
                "from_balance_id": world.card.balance_id,
                "payment_contact_id": contact["id"],
                "amount": amount,
                "currency": "EUR",
            },
            headers=partner.headers,
        )

    first = (await send(4_000)).json()["data"]
    # 1.00 + 0.5 % of 40.00 = 1.20, held with the transfer.
    fee = (await fees_of(client, partner.headers, money_transfer_id=first["id"]))[0]
    assert (fee["type"], fee["status"], fee["amount"]) == ("TRANSFER", "HELD", 120)
    assert await available(client, partner, world) == 10_000 - 4_120
    # 5,860 is all that is left, but not with its fee (129).
    too_much = await send(5_860)
    assert (too_much.status_code, too_much.json()["code"]) == (409, "INSUFFICIENT_FUNDS")
    assert await available(client, partner, world) == 10_000 - 4_120

    done = await client.post(
        f"/v1/admin/transfers/{first['id']}/complete", json={}, headers=world.admin.headers
    )
    assert done.status_code == 200, done.text
    fee = (await fees_of(client, partner.headers, money_transfer_id=first["id"]))[0]
    assert (fee["status"], fee["amount"]) == ("CHARGED", 120)
    second = (await send(1_000)).json()["data"]
    failed = await client.post(
        f"/v1/admin/transfers/{second['id']}/fail", json={}, headers=world.admin.headers
    )
    assert failed.status_code == 200, failed.text
    fee = (await fees_of(client, partner.headers, money_transfer_id=second["id"]))[0]
    assert fee["status"] == "RELEASED"
    assert await available(client, partner, world) == 10_000 - 4_120
    assert await verify(session) == []
