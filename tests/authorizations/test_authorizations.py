"""The authorization engine through /v1/network: approve and hold, each decline, retransmission,
reversal, clearing — and the books still balance."""

from datetime import timedelta
from typing import Any

from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.ledger.verify import verify
from cardcore.models.ids import new_id
from tests.authorizations.network import authorize, available, body, network_ids
from tests.factories import Partner, World, bearer
from tests.kit.jose import encrypted_post, opened


async def test_approve_holds_and_retransmission_holds_once(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    message = body(world)
    first = await client.post(
        "/v1/network/authorizations", json=message, headers=world.network.headers
    )
    again = await client.post(
        "/v1/network/authorizations", json=message, headers=world.network.headers
    )
    assert first.json() == again.json()
    answer = first.json()
    assert (answer["approved"], answer["response_code"], answer["held_amount"]) == (
        True,
        "00",
        1_000,
    )
    assert len(answer["authorization_code"]) == 6
    assert answer["available_balance"] == 9_000
    assert await available(client, partner, world) == 9_000
    assert await verify(session) == []
    # Only the network may call it.
    assert (
        await client.post("/v1/network/authorizations", json=body(world), headers=partner.headers)
    ).status_code == 403


async def test_declines_are_transactions_with_their_reason(
    client: AsyncClient,
    partner: Partner,
    world: World,
) -> None:
    funds = await authorize(client, world, amount=10_001)
    assert (funds["approved"], funds["response_code"], funds["decline_reason"]) == (
        False,
        "51",
        "INSUFFICIENT_FUNDS",
    )
    await client.put(
        f"/v1/cards/{world.card.id}/controls",
        json={"channels": {"ATM": False}},
        headers=partner.headers,
    )
    channel = await authorize(client, world, channel="ATM")
    assert (channel["response_code"], channel["decline_reason"]) == ("57", "CHANNEL_ATM_DISABLED")
    foreign = await authorize(client, world, currency="USD")
    assert foreign["response_code"] == "12"
    expiry = await authorize(client, world, expiry="0101")
    assert expiry["response_code"] == "54"
    real_cvv = opened(
        await encrypted_post(
            client, f"/v1/cards/{world.card.id}/reveal", {"fields": ["cvv"]}, partner.headers
        )
    )["data"]["cvv"]
    wrong = await authorize(client, world, cvv2=f"{(int(real_cvv) + 1) % 1000:03d}")
    assert (wrong["response_code"], wrong["decline_reason"]) == ("N7", "CVV2_MISMATCH")
    good = await authorize(client, world, cvv2=real_cvv)
    assert good["approved"] is True
    listed = (await client.get("/v1/transactions?status=DECLINED", headers=partner.headers)).json()[
        "data"
    ]
    assert {t["decline_reason"] for t in listed} >= {
        "INSUFFICIENT_FUNDS",
        "CHANNEL_ATM_DISABLED",
        "EXPIRY_MISMATCH",
    }
    await client.post(
        f"/v1/cards/{world.card.id}/lock", json={"reason_code": 2}, headers=partner.headers
    )
    stolen = await authorize(client, world)
    assert stolen["response_code"] == "43"


async def test_reversal_and_clearing(
    client: AsyncClient, partner: Partner, world: World, session: AsyncSession
) -> None:
    hold = await authorize(client, world, amount=3_000)
    partial = await client.post(
        "/v1/network/reversals",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 1_000,
            "network": {"network_transaction_id": "rev-1"},
        },
        headers=world.network.headers,
    )
    assert partial.json()["held_amount"] == 2_000
    assert await available(client, partner, world) == 8_000
    cleared = await client.post(
        "/v1/network/clearings",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 1_500,
            "network": {"network_transaction_id": "clr-1"},
        },
        headers=world.network.headers,
    )
    assert cleared.status_code == 200, cleared.text
    balance = (
        await client.get(f"/v1/balances/{world.card.balance_id}", headers=partner.headers)
    ).json()["data"]
    assert (balance["total"], balance["available"], balance["pending"]) == (8_500, 8_500, 0)
    replay = await client.post(
        "/v1/network/clearings",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 1_500,
            "network": {"network_transaction_id": "clr-1"},
        },
        headers=world.network.headers,
    )
    assert replay.json() == cleared.json()
    twice = await client.post(
        "/v1/network/clearings",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 100,
            "network": {"network_transaction_id": "clr-2"},
        },
        headers=world.network.headers,
    )
    assert twice.json()["code"] == "TRANSFER_NOT_PENDING"
    full = await authorize(client, world, amount=500)
    reversed_ = await client.post(
        "/v1/network/reversals",
        json={
            "authorization_id": full["authorization_id"],
            "network": {"network_transaction_id": "rev-2"},
        },
        headers=world.network.headers,
    )
    assert reversed_.json()["held_amount"] == 0
    txn = (
        await client.get(f"/v1/transactions/{full['authorization_id']}", headers=partner.headers)
    ).json()["data"]
    assert txn["status"] == "REVERSED"
    settled = (
        await client.get(f"/v1/transactions/{hold['authorization_id']}", headers=partner.headers)
    ).json()["data"]
    assert (settled["status"], settled["settled_amount"]) == ("SETTLED", 1_500)
    assert await verify(session) == []


async def test_fx_conversion_with_markup(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    from sqlalchemy import update

    from cardcore.models import Program

    missing = await authorize(client, world, currency="USD")
    assert (missing["response_code"], missing["decline_reason"]) == ("12", "NO_FX_RATE")
    await session.execute(
        update(Program).where(Program.id == partner.program_id).values(fx_markup_bps=100)
    )
    await session.commit()
    put = await client.put(
        "/v1/admin/fx-rates",
        json={"base": "USD", "quote": "EUR", "rate": "0.9"},
        headers=world.admin.headers,
    )
    assert put.status_code == 200, put.text
    converted = await authorize(client, world, currency="USD", amount=1_000)
    # 10.00 USD × 0.9 × 1.01 = 9.09 EUR
    assert (converted["approved"], converted["held_amount"], converted["currency"]) == (
        True,
        909,
        "EUR",
    )
    jpy = await client.put(
        "/v1/admin/fx-rates",
        json={"base": "JPY", "quote": "EUR", "rate": "0.0062"},
        headers=world.admin.headers,
    )
    assert jpy.status_code == 200
    yen = await authorize(client, world, currency="JPY", amount=1_000)
    # 1000 JPY (no minor unit) × 0.0062 × 1.01 = 6.2620 EUR → 626 cents, rounded half up
    assert yen["held_amount"] == 626
    rates = (await client.get("/v1/admin/fx-rates", headers=world.admin.headers)).json()["data"]
    assert {(r["base"], r["quote"]) for r in rates} == {("USD", "EUR"), ("JPY", "EUR")}


async def test_increment_refund_and_hold_expiry(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    from sqlalchemy import update

    from cardcore.authorizations.expiry import expire_holds
    from cardcore.kit.jobs import JobContext
    from cardcore.models import CardTransaction

    hold = await authorize(client, world, amount=2_000)

    async def follow(path: str, amount: int, ntx: str) -> dict[str, Any]:
        response = await client.post(
            path,
            json={
                "authorization_id": hold["authorization_id"],
                "amount": amount,
                "network": {"network_transaction_id": ntx},
            },
            headers=world.network.headers,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    raised = await follow("/v1/network/incremental-authorizations", 1_000, "inc-1")
    assert raised["held_amount"] == 3_000
    too_much = await follow("/v1/network/incremental-authorizations", 7_001, "inc-2")
    assert (too_much["approved"], too_much["response_code"], too_much["held_amount"]) == (
        False,
        "51",
        3_000,
    )
    assert await available(client, partner, world) == 7_000, "the old hold is intact"
    replayed = await follow("/v1/network/incremental-authorizations", 7_001, "inc-2")
    assert replayed == too_much, "a retransmitted refusal stays a refusal"
    await follow("/v1/network/clearings", 3_000, "clr-3")
    back = await follow("/v1/network/refunds", 500, "ref-1")
    assert back["available_balance"] == 7_500
    assert (await follow("/v1/network/refunds", 500, "ref-1")) == back, (
        "a retransmitted refund pays once"
    )
    assert await available(client, partner, world) == 7_500

    stale = await authorize(client, world, amount=1_500)
    await session.execute(
        update(CardTransaction)
        .where(CardTransaction.id == stale["authorization_id"])
        .values(created_at=CardTransaction.created_at - timedelta(days=8))
    )
    await session.commit()
    await expire_holds(session, {}, JobContext())
    await session.commit()
    expired = (
        await client.get(f"/v1/transactions/{stale['authorization_id']}", headers=partner.headers)
    ).json()["data"]
    assert (expired["status"], expired["held_amount"]) == ("EXPIRED", 0)
    assert await available(client, partner, world) == 7_500
    assert await verify(session) == []


async def test_transaction_history_and_filters(
    client: AsyncClient, partner: Partner, world: World
) -> None:
    hold = await authorize(client, world, amount=700)
    await client.post(
        "/v1/network/clearings",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 600,
            "network": {"network_transaction_id": "h-clr"},
        },
        headers=world.network.headers,
    )
    await authorize(client, world, amount=99_999)
    detail = (
        await client.get(f"/v1/transactions/{hold['authorization_id']}", headers=partner.headers)
    ).json()["data"]
    assert [h["kind"] for h in detail["history"]] == ["authorization", "clearing"]
    card_view = (
        await client.get(f"/v1/cards/{world.card.id}/transactions", headers=partner.headers)
    ).json()["data"]
    assert len(card_view) == 2
    big = (await client.get("/v1/transactions?min_amount=1000", headers=partner.headers)).json()[
        "data"
    ]
    assert [t["decline_reason"] for t in big] == ["INSUFFICIENT_FUNDS"]
    by_balance = (
        await client.get(
            f"/v1/transactions?balance_id={world.card.balance_id}&status=SETTLED",
            headers=partner.headers,
        )
    ).json()["data"]
    assert [t["id"] for t in by_balance] == [hold["authorization_id"]]
    token = (
        await client.post(
            f"/v1/users/{world.card.user_id}/sessions", json={}, headers=partner.headers
        )
    ).json()["data"]["access_token"]
    mine = (await client.get("/v1/me/transactions", headers=bearer(token))).json()["data"]
    assert len(mine) == 2


async def test_the_transactions_of_an_unknown_or_foreign_card_are_a_404(
    client: AsyncClient, partner: Partner, other_partner: Partner, world: World
) -> None:
    await authorize(client, world, amount=700)
    path = f"/v1/cards/{world.card.id}/transactions"
    foreign = await client.get(path, headers=other_partner.headers)
    unknown = await client.get(f"/v1/cards/{new_id('card')}/transactions", headers=partner.headers)
    for answer in (foreign, unknown):
        assert answer.status_code == 404, answer.text
    # Another program's card is indistinguishable from one that does not exist.
    assert {**foreign.json(), "request_id": None} == {**unknown.json(), "request_id": None}
    assert foreign.json()["code"] == "NOT_FOUND"


async def test_balance_inquiry(client: AsyncClient, partner: Partner, world: World) -> None:
    await authorize(client, world, amount=2_500)
    asked = await client.post(
        "/v1/network/balance-inquiries",
        json={"card_id": world.card.id},
        headers=world.network.headers,
    )
    assert asked.json() == {
        "card_id": world.card.id,
        "response_code": "00",
        "available_balance": 7_500,
        "currency": "EUR",
    }
    await client.post(f"/v1/cards/{world.card.id}/freeze", headers=partner.headers)
    frozen = await client.post(
        "/v1/network/balance-inquiries",
        json={"card_id": world.card.id},
        headers=world.network.headers,
    )
    assert (frozen.json()["response_code"], frozen.json()["available_balance"]) == ("05", None)


async def test_balance_inquiries_take_the_network_ids(client: AsyncClient, world: World) -> None:
    ids = network_ids()
    inquiry = {"card_id": world.card.id, "network": ids}
    first = await client.post(
        "/v1/network/balance-inquiries", json=inquiry, headers=world.network.headers
    )
    assert first.status_code == 200, first.text
    assert (first.json()["response_code"], first.json()["available_balance"]) == ("00", 10_000)
    by_rrn = await client.post(
        "/v1/network/balance-inquiries",
        json={"card_id": world.card.id, "network": {"rrn": "123456789012", "stan": "000001"}},
        headers=world.network.headers,
    )
    assert by_rrn.status_code == 200, by_rrn.text
    # An inquiry holds nothing: its retransmission answers the balance as it is now.
    await authorize(client, world, amount=2_500)
    again = await client.post(
        "/v1/network/balance-inquiries", json=inquiry, headers=world.network.headers
    )
    assert again.json()["available_balance"] == 7_500
    half = await client.post(
        "/v1/network/balance-inquiries",
        json={"card_id": world.card.id, "network": {"rrn": "123456789012"}},
        headers=world.network.headers,
    )
    assert half.status_code == 422
