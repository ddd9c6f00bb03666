"""Balances, reloads, partner balances, summaries, IBAN transfers — through the API."""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.ledger.verify import verify
from cardcore.models import Event
from tests.balances.helpers import approved_user, open_balance, reload
from tests.factories import Partner, bearer, fund_partner, make_admin


async def test_a_balance_needs_approved_kyc_and_an_allowed_currency(
    client: AsyncClient, partner: Partner
) -> None:
    user = (await client.post("/v1/users", json={}, headers=partner.headers)).json()["data"]
    refused = await client.post(
        "/v1/balances", json={"user_id": user["id"], "currency": "EUR"}, headers=partner.headers
    )
    assert (refused.status_code, refused.json()["code"]) == (409, "KYC_NOT_APPROVED")
    approved = await approved_user(client, partner)
    usd = await client.post(
        "/v1/balances", json={"user_id": approved, "currency": "USD"}, headers=partner.headers
    )
    assert (usd.status_code, usd.json()["code"]) == (422, "CURRENCY_NOT_ALLOWED")
    bogus = await client.post(
        "/v1/balances", json={"user_id": approved, "currency": "XXQ"}, headers=partner.headers
    )
    assert bogus.status_code == 422
    created = await client.post(
        "/v1/balances", json={"user_id": approved, "currency": "EUR"}, headers=partner.headers
    )
    assert created.status_code == 201
    assert created.json()["data"] | {"id": None, "created_at": None} == {
        "id": None,
        "created_at": None,
        "owner_type": "user",
        "owner_id": approved,
        "currency": "EUR",
        "status": "ACTIVE",
        "total": 0,
        "available": 0,
        "pending": 0,
        "cards": [],
    }
    listed = await client.get(f"/v1/users/{approved}/balances", headers=partner.headers)
    assert [b["id"] for b in listed.json()["data"]] == [created.json()["data"]["id"]]


async def test_reload_charges_the_partner_credit_balance(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    balance = await open_balance(client, partner)
    none_yet = await reload(client, partner, balance["id"], 100)
    assert (none_yet.status_code, none_yet.json()["code"]) == (409, "INSUFFICIENT_PARTNER_FUNDS")

    await fund_partner(session, partner, 10_000, threshold=2_000)
    done = await reload(client, partner, balance["id"], 7_000)
    assert done.status_code == 200, done.text
    assert done.json()["data"]["balance"]["available"] == 7_000
    short = await reload(client, partner, balance["id"], 3_001)
    assert short.json()["code"] == "INSUFFICIENT_PARTNER_FUNDS"
    after = (await client.get(f"/v1/balances/{balance['id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert after["total"] == 7_000, "a refused reload moved nothing"
    partner_view = (await client.get("/v1/partner-balances", headers=partner.headers)).json()[
        "data"
    ]
    assert [(p["type"], p["available"]) for p in partner_view] == [("CREDIT", 3_000)]

    await reload(client, partner, balance["id"], 1_500)  # crosses the 2,000 threshold
    await reload(client, partner, balance["id"], 100)  # already below: no second warning
    low = (await session.scalars(select(Event).where(Event.type == "partner_balance.low"))).all()
    assert [(e.data["available"], e.data["threshold"]) for e in low] == [(1_500, 2_000)]
    assert await verify(session) == []


async def test_ledger_entries_show_the_running_balance(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    await fund_partner(session, partner, 10_000)
    a = await open_balance(client, partner)
    b = await open_balance(client, partner)
    for amount in (1_000, 2_000, 500):
        await reload(client, partner, a["id"], amount)
    await client.post(
        "/v1/transfers",
        json={
            "from_balance_id": a["id"],
            "to_balance_id": b["id"],
            "amount": 700,
            "currency": "EUR",
        },
        headers=partner.headers,
    )
    page = (
        await client.get(f"/v1/balances/{a['id']}/ledger?limit=2", headers=partner.headers)
    ).json()
    assert [
        (e["code"], e["direction"], e["amount"], e["running_balance"]) for e in page["data"]
    ] == [
        ("transfer", "debit", 700, 2_800),
        ("reload", "credit", 500, 3_500),
    ]
    rest = (
        await client.get(
            f"/v1/balances/{a['id']}/ledger?limit=2&cursor={page['meta']['next_cursor']}",
            headers=partner.headers,
        )
    ).json()
    assert [e["running_balance"] for e in rest["data"]] == [3_000, 1_000]
    reloads = (
        await client.get(f"/v1/balances/{a['id']}/ledger?code=reload", headers=partner.headers)
    ).json()
    assert [e["running_balance"] for e in reloads["data"]] == [3_500, 3_000, 1_000]
    singles = (
        await client.get(f"/v1/balances/{a['id']}/ledger?kind=single", headers=partner.headers)
    ).json()
    assert len(singles["data"]) == 4
    assert (
        await client.get(f"/v1/balances/{a['id']}/ledger?kind=other", headers=partner.headers)
    ).status_code == 422


async def test_block_and_close(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    await fund_partner(session, partner, 1_000)
    balance = await open_balance(client, partner)
    await reload(client, partner, balance["id"], 100)
    blocked = await client.post(f"/v1/balances/{balance['id']}/block", headers=partner.headers)
    assert blocked.json()["data"]["status"] == "BLOCKED"
    assert (await reload(client, partner, balance["id"], 1)).json()["code"] == "BALANCE_NOT_ACTIVE"
    await client.post(f"/v1/balances/{balance['id']}/unblock", headers=partner.headers)
    not_empty = await client.post(f"/v1/balances/{balance['id']}/close", headers=partner.headers)
    assert (not_empty.status_code, not_empty.json()["code"]) == (409, "BALANCE_NOT_EMPTY")
    empty = await open_balance(client, partner)
    closed = await client.post(f"/v1/balances/{empty['id']}/close", headers=partner.headers)
    assert closed.json()["data"]["status"] == "CLOSED"
    reopen = await client.post(f"/v1/balances/{empty['id']}/unblock", headers=partner.headers)
    assert reopen.json()["code"] == "BALANCE_NOT_ACTIVE"


async def test_iban_validation(client: AsyncClient, partner: Partner) -> None:
    ok = await client.post(
        "/v1/iban/validate", json={"iban": "de89 3704 0044 0532 0130 00"}, headers=partner.headers
    )
    assert ok.json()["data"] == {
        "valid": True,
        "iban": "DE89370400440532013000",
        "formatted": "DE89 3704 0044 0532 0130 00",
        "country": "DE",
        "bank_code": "37040044",
        "bic": "COBADEFFXXX",
        "bank_name": "Commerzbank",
    }
    for bad in ("DE89 3704 0044 0532 0130 01", "XX00", "PL6110901014000007121981287"):
        response = await client.post(
            "/v1/iban/validate", json={"iban": bad}, headers=partner.headers
        )
        assert (response.status_code, response.json()["code"]) == (422, "INVALID_IBAN"), bad


async def test_iban_transfer_is_held_then_completed_or_failed(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    await fund_partner(session, partner, 5_000)
    balance = await open_balance(client, partner)
    await reload(client, partner, balance["id"], 1_000)
    contact = (
        await client.post(
            "/v1/payment-contacts",
            json={
                "user_id": balance["owner_id"],
                "iban": "PL61109010140000071219812874",
                "holder_name": "Zofia K",
            },
            headers=partner.headers,
        )
    ).json()["data"]
    assert contact["bic"] == "WBKPPLPPXXX"

    async def send(amount: int):  # type: ignore[no-untyped-def]
        return await client.post(
            "/v1/transfers",
            json={
                "from_balance_id": balance["id"],
                "payment_contact_id": contact["id"],
                "amount": amount,
                "currency": "EUR",
            },
            headers=partner.headers,
        )

    first = (await send(600)).json()["data"]
    assert (first["type"], first["status"]) == ("EXTERNAL", "PENDING")
    held = (await client.get(f"/v1/balances/{balance['id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert (held["total"], held["available"], held["pending"]) == (1_000, 400, 600)
    too_much = await send(401)
    assert (too_much.status_code, too_much.json()["code"]) == (409, "INSUFFICIENT_FUNDS")

    token = (await make_admin(app, partner, "manager")).token
    done = await client.post(
        f"/v1/admin/transfers/{first['id']}/complete", json={}, headers=bearer(token)
    )
    assert done.json()["data"]["status"] == "COMPLETED"
    again = await client.post(
        f"/v1/admin/transfers/{first['id']}/fail", json={}, headers=bearer(token)
    )
    assert again.json()["code"] == "TRANSFER_NOT_PENDING"
    second = (await send(300)).json()["data"]
    failed = await client.post(
        f"/v1/admin/transfers/{second['id']}/fail",
        json={"reason": "account closed"},
        headers=bearer(token),
    )
    assert (failed.json()["data"]["status"], failed.json()["data"]["failure_reason"]) == (
        "FAILED",
        "account closed",
    )
    final = (await client.get(f"/v1/balances/{balance['id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert (final["total"], final["available"], final["pending"]) == (400, 400, 0)
    types = [
        e.type
        for e in (
            await session.scalars(
                select(Event).where(Event.type.like("transfer.%")).order_by(Event.id)
            )
        )
    ]
    assert types == [
        "transfer.created",
        "transfer.completed",
        "transfer.created",
        "transfer.failed",
    ]
    assert await verify(session) == []


async def test_summary_and_partner_balances_for_ops(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    token = (await make_admin(app, partner, "admin")).token
    created = await client.post(
        "/v1/admin/partner-balances",
        json={"type": "CREDIT", "currency": "EUR"},
        headers=bearer(token),
    )
    assert created.status_code == 201
    twice = await client.post(
        "/v1/admin/partner-balances",
        json={"type": "CREDIT", "currency": "EUR"},
        headers=bearer(token),
    )
    assert twice.json()["code"] == "ALREADY_EXISTS"
    pbl = created.json()["data"]["id"]
    reloaded = await client.post(
        f"/v1/admin/partner-balances/{pbl}/reload",
        json={"amount": 9_000, "reference": "wire"},
        headers=bearer(token),
    )
    assert reloaded.json()["data"]["available"] == 9_000
    balance = await open_balance(client, partner)
    await reload(client, partner, balance["id"], 2_500)
    summary = (await client.get("/v1/admin/balance-summary", headers=bearer(token))).json()["data"]
    assert summary == [{"currency": "EUR", "users": 2_500, "wallet": 9_000}]
    assert (
        await client.get("/v1/admin/balance-summary", headers=partner.headers)
    ).status_code == 403


async def test_balances_stay_in_their_program(
    client: AsyncClient, partner: Partner, other_partner: Partner, session: AsyncSession
) -> None:
    await fund_partner(session, partner, 1_000)
    mine = await open_balance(client, partner)
    theirs = await open_balance(client, other_partner)
    for method, path in (
        ("GET", f"/v1/balances/{mine['id']}"),
        ("GET", f"/v1/balances/{mine['id']}/ledger"),
        ("POST", f"/v1/balances/{mine['id']}/block"),
    ):
        assert (
            await client.request(method, path, headers=other_partner.headers)
        ).status_code == 404
    assert (await reload(client, other_partner, mine["id"], 1)).status_code == 404
    cross = await client.post(
        "/v1/transfers",
        json={
            "from_balance_id": mine["id"],
            "to_balance_id": theirs["id"],
            "amount": 1,
            "currency": "EUR",
        },
        headers=partner.headers,
    )
    assert cross.status_code == 404
