"""The authorization engine through /v1/network: approve and hold, each decline, retransmission,
reversal, clearing — and the books still balance."""

import itertools

import pytest
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.ledger.verify import verify
from tests.auth.helpers import bearer
from tests.cards.helpers import encrypted_post, issue, opened, setup_cards
from tests.conftest import Partner
from tests.money.helpers import reload

_ids = itertools.count(1)


@pytest.fixture
async def world(client: AsyncClient, session: AsyncSession, partner: Partner) -> dict:  # type: ignore[type-arg]
    setup = await setup_cards(client, session, partner)
    await reload(client, partner, setup["balance_id"], 10_000)
    card = (await issue(client, partner, setup)).json()["data"]
    key = await client.post(
        "/v1/admin/network-keys", json={"name": "processor"}, headers=bearer(setup["token"])
    )
    return {**setup, "card": card, "network": {"X-API-Key": key.json()["data"]["secret"]}}


def _body(world: dict, **overrides) -> dict:  # type: ignore[no-untyped-def, type-arg]
    body = {
        "card_id": world["card"]["id"],
        "amount": 1_000,
        "currency": "EUR",
        "merchant": {"name": "Shop", "mcc": "5411", "country": "PL", "city": "Warszawa"},
        "channel": "POS",
        "entry_mode": "CHIP",
        "network": {"network_transaction_id": f"ntx-{next(_ids)}"},
    }
    return {**body, **overrides}


async def _authorize(client: AsyncClient, world: dict, **overrides) -> dict:  # type: ignore[no-untyped-def, type-arg]
    response = await client.post(
        "/v1/network/authorizations", json=_body(world, **overrides), headers=world["network"]
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _available(client: AsyncClient, partner: Partner, world: dict) -> int:  # type: ignore[type-arg]
    return (
        await client.get(f"/v1/balances/{world['balance_id']}", headers=partner.headers)
    ).json()["data"]["available"]  # type: ignore[no-any-return]


async def test_approve_holds_and_retransmission_holds_once(
    client: AsyncClient,
    partner: Partner,
    world: dict,
    session: AsyncSession,  # type: ignore[type-arg]
) -> None:
    body = _body(world)
    first = await client.post("/v1/network/authorizations", json=body, headers=world["network"])
    again = await client.post("/v1/network/authorizations", json=body, headers=world["network"])
    assert first.json() == again.json()
    answer = first.json()
    assert (answer["approved"], answer["response_code"], answer["held_amount"]) == (
        True,
        "00",
        1_000,
    )
    assert len(answer["authorization_code"]) == 6
    assert answer["available_balance"] == 9_000
    assert await _available(client, partner, world) == 9_000
    assert await verify(session) == []
    # Only the network may call it.
    assert (
        await client.post("/v1/network/authorizations", json=_body(world), headers=partner.headers)
    ).status_code == 403


async def test_declines_are_transactions_with_their_reason(
    client: AsyncClient,
    partner: Partner,
    world: dict,  # type: ignore[type-arg]
) -> None:
    funds = await _authorize(client, world, amount=10_001)
    assert (funds["approved"], funds["response_code"], funds["decline_reason"]) == (
        False,
        "51",
        "INSUFFICIENT_FUNDS",
    )
    await client.put(
        f"/v1/cards/{world['card']['id']}/controls",
        json={"channels": {"ATM": False}},
        headers=partner.headers,
    )
    channel = await _authorize(client, world, channel="ATM")
    assert (channel["response_code"], channel["decline_reason"]) == ("57", "CHANNEL_ATM_DISABLED")
    foreign = await _authorize(client, world, currency="USD")
    assert foreign["response_code"] == "12"
    expiry = await _authorize(client, world, expiry="0101")
    assert expiry["response_code"] == "54"
    real_cvv = opened(
        await encrypted_post(
            client, f"/v1/cards/{world['card']['id']}/reveal", {"fields": ["cvv"]}, partner.headers
        )
    )["data"]["cvv"]
    wrong = await _authorize(client, world, cvv2=f"{(int(real_cvv) + 1) % 1000:03d}")
    assert (wrong["response_code"], wrong["decline_reason"]) == ("N7", "CVV2_MISMATCH")
    good = await _authorize(client, world, cvv2=real_cvv)
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
        f"/v1/cards/{world['card']['id']}/lock", json={"reason_code": 2}, headers=partner.headers
    )
    stolen = await _authorize(client, world)
    assert stolen["response_code"] == "43"


async def test_three_wrong_pins_lock_the_card(
    client: AsyncClient, partner: Partner, world: dict
) -> None:  # type: ignore[type-arg]
    await encrypted_post(
        client, f"/v1/cards/{world['card']['id']}/pin", {"pin": "2580"}, partner.headers, "PUT"
    )
    assert (await _authorize(client, world, pin="2580"))["approved"] is True
    assert (await _authorize(client, world, pin="1111"))["response_code"] == "55"
    assert (await _authorize(client, world, pin="1112"))["response_code"] == "55"
    assert (await _authorize(client, world, pin="1113"))["response_code"] == "75"
    card = (await client.get(f"/v1/cards/{world['card']['id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert (card["status"], card["lock_reason"], card["failure_action_code"]) == (
        "LOCKED",
        6,
        "1006",
    )
    assert (await _authorize(client, world, pin="2580"))["response_code"] == "75"


async def test_reversal_and_clearing(
    client: AsyncClient, partner: Partner, world: dict, session: AsyncSession
) -> None:  # type: ignore[type-arg]
    hold = await _authorize(client, world, amount=3_000)
    partial = await client.post(
        "/v1/network/reversals",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 1_000,
            "network": {"network_transaction_id": "rev-1"},
        },
        headers=world["network"],
    )
    assert partial.json()["held_amount"] == 2_000
    assert await _available(client, partner, world) == 8_000
    cleared = await client.post(
        "/v1/network/clearings",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 1_500,
            "network": {"network_transaction_id": "clr-1"},
        },
        headers=world["network"],
    )
    assert cleared.status_code == 200, cleared.text
    balance = (
        await client.get(f"/v1/balances/{world['balance_id']}", headers=partner.headers)
    ).json()["data"]
    assert (balance["total"], balance["available"], balance["pending"]) == (8_500, 8_500, 0)
    replay = await client.post(
        "/v1/network/clearings",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 1_500,
            "network": {"network_transaction_id": "clr-1"},
        },
        headers=world["network"],
    )
    assert replay.json() == cleared.json()
    twice = await client.post(
        "/v1/network/clearings",
        json={
            "authorization_id": hold["authorization_id"],
            "amount": 100,
            "network": {"network_transaction_id": "clr-2"},
        },
        headers=world["network"],
    )
    assert twice.json()["code"] == "TRANSFER_NOT_PENDING"
    full = await _authorize(client, world, amount=500)
    reversed_ = await client.post(
        "/v1/network/reversals",
        json={
            "authorization_id": full["authorization_id"],
            "network": {"network_transaction_id": "rev-2"},
        },
        headers=world["network"],
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
