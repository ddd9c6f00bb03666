"""Fee refunds (full, partial, capped, only of charged fees, audited) and fee revenue per
currency and fee type over a window, from the ledger."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.ledger.verify import verify
from cardcore.models import LedgerTransfer, Program
from cardcore.models.ids import new_id
from tests.balances.helpers import open_balance, reload
from tests.cards.helpers import issue
from tests.factories import (
    CardProgram,
    Partner,
    bearer,
    make_admin,
    make_card_program,
    make_cardholder,
)
from tests.fees.helpers import eur, fees_of, set_policy, set_schedule


async def _card_fee(
    client: AsyncClient, partner: Partner, setup: CardProgram, **body: Any
) -> dict[str, Any]:
    issued = await issue(client, partner, setup, **body)
    assert issued.status_code == 201, issued.text
    (line,) = await fees_of(client, partner.headers, card_id=issued.json()["data"]["id"])
    return line  # type: ignore[no-any-return]


async def _refund(client: AsyncClient, token: str, fee_id: str, **body: Any):  # type: ignore[no-untyped-def]
    return await client.post(f"/v1/admin/fees/{fee_id}/refund", json=body, headers=bearer(token))


async def _total(client: AsyncClient, partner: Partner, balance_id: str) -> int:
    response = await client.get(f"/v1/balances/{balance_id}", headers=partner.headers)
    return response.json()["data"]["total"]  # type: ignore[no-any-return]


async def test_full_and_partial_refunds_are_capped_audited_and_paid_back(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    admin = setup.admin.token
    manager = (await make_admin(app, partner, "manager")).token
    employee = (await make_admin(app, partner, "employee")).token
    await reload(client, partner, setup.holder.balance_id, 10_000)
    await set_schedule(client, admin, [{"type": "CARD_ISSUANCE", "prices": eur(1_000)}])
    fee = await _card_fee(client, partner, setup)
    assert (fee["status"], await _total(client, partner, setup.holder.balance_id)) == (
        "CHARGED",
        9_000,
    )

    # Employees and partners may not refund.
    refused = await _refund(client, employee, fee["id"], amount=100)
    assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    by_partner = await client.post(
        f"/v1/admin/fees/{fee['id']}/refund", json={}, headers=partner.headers
    )
    assert by_partner.status_code in (401, 403)

    first = await _refund(client, manager, fee["id"], amount=300, reason="goodwill")
    assert first.status_code == 201, first.text
    made = first.json()["data"]
    assert (made["fee_id"], made["amount"], made["currency"], made["reason"]) == (
        fee["id"],
        300,
        "EUR",
        "goodwill",
    )
    assert made["ledger_transfer_id"].startswith("ltr_")
    second = await _refund(client, admin, fee["id"], amount=500)
    assert second.status_code == 201, second.text
    assert await _total(client, partner, setup.holder.balance_id) == 9_800

    # No more than what remains (200), and never nothing or less.
    for amount in (201, 0, -1):
        over = await _refund(client, admin, fee["id"], amount=amount)
        assert (over.status_code, over.json()["code"]) == (422, "VALIDATION_ERROR"), amount
    assert (await _refund(client, admin, fee["id"], amount=201)).json()["errors"][0][
        "code"
    ] == "ABOVE_REFUNDABLE"
    # Left out, the amount is all that remains; then nothing does.
    rest = await _refund(client, manager, fee["id"])
    assert (rest.status_code, rest.json()["data"]["amount"]) == (201, 200)
    nothing = await _refund(client, admin, fee["id"])
    assert (nothing.status_code, nothing.json()["code"]) == (409, "FEE_NOT_REFUNDABLE")

    shown = (await client.get(f"/v1/fees/{fee['id']}", headers=partner.headers)).json()["data"]
    assert (shown["status"], shown["amount"], shown["refunded_amount"]) == ("CHARGED", 1_000, 1_000)
    assert await _total(client, partner, setup.holder.balance_id) == 10_000
    ledger = await client.get(
        f"/v1/balances/{setup.holder.balance_id}/ledger",
        params={"code": "fee_refund"},
        headers=partner.headers,
    )
    refunds_out = [made["id"], second.json()["data"]["id"], rest.json()["data"]["id"]]
    listed = await client.get(f"/v1/admin/fees/{fee['id']}/refunds", headers=bearer(manager))
    assert listed.status_code == 200, listed.text
    assert [(r["id"], r["amount"]) for r in listed.json()["data"]] == [
        (refunds_out[2], 200),
        (refunds_out[1], 500),
        (refunds_out[0], 300),
    ]
    assert [(e["direction"], e["amount"], e["id"]) for e in ledger.json()["data"]] == [
        ("credit", r["amount"], r["ledger_transfer_id"]) for r in listed.json()["data"]
    ]
    assert (
        await client.get(f"/v1/admin/fees/{fee['id']}/refunds", headers=bearer(employee))
    ).status_code == 403

    # One fee.refunded event per refund.
    events = await client.get(
        "/v1/events", params={"type": "fee.refunded"}, headers=partner.headers
    )
    assert sorted(
        (e["object_id"], e["data"]["refund_id"], e["data"]["refunded_amount"])
        for e in events.json()["data"]
    ) == sorted((fee["id"], r["id"], r["amount"]) for r in listed.json()["data"])

    # On the audit trail: who refunded, and who tried.
    audit = await client.get(
        "/v1/admin/audit-log",
        params={"object_id": fee["id"], "limit": 100},
        headers=bearer(admin),
    )
    assert audit.status_code == 200, audit.text
    trail = [(e["action"], e["outcome"], e["status_code"]) for e in audit.json()["data"]]
    assert trail.count(("refund_fee", "success", 201)) == 3
    assert ("refund_fee", "failure", 403) in trail
    assert ("refund_fee", "failure", 422) in trail
    actors = {e["actor_id"] for e in audit.json()["data"] if e["outcome"] == "success"}
    assert actors == {made["refunded_by"], second.json()["data"]["refunded_by"]}
    assert len(actors) == 2
    assert await verify(session) == []


async def test_only_a_charged_fee_of_the_program_can_be_refunded(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    partner: Partner,
    other_partner: Partner,
) -> None:
    setup = await make_card_program(app, partner)
    admin = setup.admin.token
    await set_schedule(
        client,
        admin,
        [
            {
                "type": "CARD_ISSUANCE",
                "prices": eur(400),
                "waivers": [{"rule": "FIRST_CARDS_FREE", "count": 1}],
            }
        ],
    )
    waived = await _card_fee(client, partner, setup)
    skipped = await _card_fee(client, partner, setup)  # the balance is empty: SKIP
    assert (waived["status"], skipped["status"]) == ("WAIVED", "SKIPPED")
    for fee in (waived, skipped):
        for body in ({}, {"amount": 1}):
            refused = await _refund(client, admin, fee["id"], **body)
            assert (refused.status_code, refused.json()["code"]) == (409, "FEE_NOT_REFUNDABLE")

    # Another program's charged fee is not found, as an id that does not exist.
    other = await make_card_program(app, other_partner)
    await reload(client, other_partner, other.holder.balance_id, 1_000)
    await set_schedule(client, other.admin.token, [{"type": "CARD_ISSUANCE", "prices": eur(400)}])
    theirs = await _card_fee(client, other_partner, other)
    assert theirs["status"] == "CHARGED"
    for fee_id in (theirs["id"], new_id("fee"), "fee_nope"):
        missing = await _refund(client, admin, fee_id)
        assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND"), fee_id
        listed = await client.get(f"/v1/admin/fees/{fee_id}/refunds", headers=bearer(admin))
        assert listed.status_code == 404, fee_id

    assert await _total(client, partner, setup.holder.balance_id) == 0
    assert await _total(client, other_partner, other.holder.balance_id) == 600
    assert (
        await client.get("/v1/events", params={"type": "fee.refunded"}, headers=partner.headers)
    ).json()["data"] == []
    assert await verify(session) == []


async def _revenue(client: AsyncClient, token: str, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    return await client.get(
        "/v1/admin/fee-revenue",
        params={"from": start.isoformat(), "to": end.isoformat()},
        headers=bearer(token),
    )


def _rows(response: Any) -> list[tuple[str, str, int, int, int, int]]:
    assert response.status_code == 200, response.text
    return [
        (r["currency"], r["type"], r["charged"], r["refunded"], r["net"], r["count"])
        for r in response.json()["data"]
    ]


async def test_fee_revenue_per_currency_and_type_within_the_window(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    partner: Partner,
    other_partner: Partner,
) -> None:
    setup = await make_card_program(app, partner)
    admin = setup.admin.token
    manager = (await make_admin(app, partner, "manager")).token
    employee = (await make_admin(app, partner, "employee")).token
    await session.execute(
        update(Program).where(Program.id == partner.program_id).values(currencies=["EUR", "USD"])
    )
    await session.commit()
    await reload(client, partner, setup.holder.balance_id, 10_000)
    await set_policy(
        client,
        admin,
        fee_shortfall_policy="ALLOW_NEGATIVE",
        fee_overdraft_limits={"EUR": 1_000, "USD": 1_000},
    )
    await set_schedule(
        client,
        admin,
        [
            {"type": "BALANCE_CREATION", "prices": {"EUR": {"fixed": 100}, "USD": {"fixed": 150}}},
            {
                "type": "CARD_ISSUANCE",
                "prices": eur(500),
                "waivers": [{"rule": "FIRST_CARDS_FREE", "count": 1}],
            },
            {"type": "CARD_REPLACEMENT", "prices": eur(700)},
        ],
    )
    free = await _card_fee(client, partner, setup)
    early = await _card_fee(client, partner, setup)
    late = await _card_fee(client, partner, setup)
    assert [f["status"] for f in (free, early, late)] == ["WAIVED", "CHARGED", "CHARGED"]
    report = await client.post(
        f"/v1/cards/{late['card_id']}/reports", json={"reason": "DAMAGED"}, headers=partner.headers
    )
    replaced = await client.post(
        f"/v1/card-reports/{report.json()['data']['id']}/replace", headers=partner.headers
    )
    (replacement,) = await fees_of(client, partner.headers, card_id=replaced.json()["data"]["id"])
    euros = await open_balance(client, partner, "EUR")
    dollars = await open_balance(client, partner, "USD")
    (creation_eur,) = await fees_of(client, partner.headers, balance_id=euros["id"])
    (creation_usd,) = await fees_of(client, partner.headers, balance_id=dollars["id"])
    assert (creation_eur["status"], creation_usd["status"]) == ("CHARGED", "CHARGED")
    assert await _total(client, partner, dollars["id"]) == -150
    # A fee that was skipped is not revenue: this card would take the EUR balance past its limit.
    holder = await make_cardholder(app, partner, phone="+48601230003")
    await set_schedule(
        client,
        admin,
        [
            {"type": "BALANCE_CREATION", "prices": {"EUR": {"fixed": 100}, "USD": {"fixed": 150}}},
            {"type": "CARD_ISSUANCE", "prices": eur(5_000)},
            {"type": "CARD_REPLACEMENT", "prices": eur(700)},
        ],
    )
    too_dear = await _card_fee(client, partner, replace(setup, holder=holder))
    assert too_dear["status"] == "SKIPPED"

    for fee_id, amount in (
        (early["id"], 200),
        (replacement["id"], None),
        (creation_eur["id"], None),
    ):
        refunded = await _refund(
            client, manager, fee_id, **({} if amount is None else {"amount": amount})
        )
        assert refunded.status_code == 201, refunded.text
    # Refunding the fee that took the balance below zero brings it back to zero.
    assert await _total(client, partner, euros["id"]) == 0

    now = datetime.now(UTC)
    hour = timedelta(hours=1)
    everything = [
        ("EUR", "BALANCE_CREATION", 100 + 100, 100, 100, 2),
        ("EUR", "CARD_ISSUANCE", 1_000, 200, 800, 2),
        ("EUR", "CARD_REPLACEMENT", 700, 700, 0, 1),
        ("USD", "BALANCE_CREATION", 150, 0, 150, 1),
    ]
    assert _rows(await _revenue(client, admin, now - hour, now + hour)) == everything
    assert _rows(await _revenue(client, manager, now - hour, now + hour)) == everything
    assert _rows(await _revenue(client, admin, now + hour, now + 2 * hour)) == []
    assert _rows(await _revenue(client, admin, now - 2 * hour, now - hour)) == []

    # The later issuance fee was charged two days ago (as far as the ledger knows): a window
    # is [from, to), by when each transfer was made.
    moved_at = now - timedelta(days=2)
    await session.execute(
        update(LedgerTransfer)
        .where(LedgerTransfer.id == late["ledger_transfer_id"])
        .values(created_at=moved_at)
    )
    await session.flush()
    recent = _rows(await _revenue(client, admin, now - hour, now + hour))
    assert ("EUR", "CARD_ISSUANCE", 500, 200, 300, 1) in recent
    assert _rows(await _revenue(client, admin, moved_at, moved_at + hour)) == [
        ("EUR", "CARD_ISSUANCE", 500, 0, 500, 1)
    ]
    assert _rows(await _revenue(client, admin, moved_at - hour, moved_at)) == []
    assert _rows(await _revenue(client, admin, moved_at, now + hour)) == everything

    # Another program's revenue is its own.
    other_token = (await make_admin(app, other_partner)).token
    assert _rows(await _revenue(client, other_token, now - hour, now + hour)) == []

    # Employees may not read it; the window needs both ends, with a time zone, in order.
    assert (await _revenue(client, employee, now - hour, now + hour)).status_code == 403
    naive = now.replace(tzinfo=None)
    for params in (
        {"from": naive.isoformat(), "to": (now + hour).isoformat()},
        {"from": (now - hour).isoformat(), "to": (naive + hour).isoformat()},
        {"from": now.isoformat(), "to": now.isoformat()},
        {"from": now.isoformat(), "to": (now - hour).isoformat()},
        {"from": now.isoformat()},
        {"from": "yesterday", "to": now.isoformat()},
    ):
        bad = await client.get("/v1/admin/fee-revenue", params=params, headers=bearer(admin))
        assert (bad.status_code, bad.json()["code"]) == (422, "VALIDATION_ERROR"), params
    assert await verify(session) == []
