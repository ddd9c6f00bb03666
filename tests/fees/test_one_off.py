"""One-off fees (balance creation, card issuance per form factor, replacement, physical
conversion), the FIRST_CARDS_FREE waiver, the outbox events and ledger entries they leave, their
idempotence, and the program's policies when the balance cannot pay: SKIP, RETRY,
ALLOW_NEGATIVE."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees import service as fees
from cardcore.ledger import service as ledger
from cardcore.ledger.verify import verify
from cardcore.models import Balance, Card, LedgerAccount
from tests.balances.helpers import open_balance, reload
from tests.cards.helpers import issue
from tests.factories import DELIVERY, CardProgram, Partner, make_card_program, make_cardholder
from tests.fees.helpers import eur, fees_of, set_policy, set_schedule


async def _balance(client: AsyncClient, partner: Partner, balance_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/balances/{balance_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def _events(client: AsyncClient, partner: Partner, type_: str) -> list[dict[str, Any]]:
    response = await client.get(
        "/v1/events", params={"type": type_, "limit": 100}, headers=partner.headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def _fee_entries(client: AsyncClient, partner: Partner, balance_id: str) -> list[Any]:
    response = await client.get(
        f"/v1/balances/{balance_id}/ledger", params={"code": "fee"}, headers=partner.headers
    )
    assert response.status_code == 200, response.text
    return [(e["direction"], e["amount"], e["id"]) for e in response.json()["data"]]


async def _fee(client: AsyncClient, partner: Partner, fee_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/fees/{fee_id}", headers=partner.headers)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def _issued(client: AsyncClient, partner: Partner, setup: CardProgram, **body: Any):  # type: ignore[no-untyped-def]
    response = await issue(client, partner, setup, **body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def _replace(client: AsyncClient, partner: Partner, card_id: str, reason: str) -> Any:
    report = await client.post(
        f"/v1/cards/{card_id}/reports", json={"reason": reason}, headers=partner.headers
    )
    assert report.status_code == 201, report.text
    replaced = await client.post(
        f"/v1/card-reports/{report.json()['data']['id']}/replace", headers=partner.headers
    )
    assert replaced.status_code == 200, replaced.text
    return replaced.json()["data"]


# -- card fees -----------------------------------------------------------------------------------


async def test_issuance_fee_per_form_factor_with_its_event_and_ledger_entry(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await reload(client, partner, setup.holder.balance_id, 10_000)
    schedule = await set_schedule(
        client,
        setup.admin.token,
        [
            {"type": "CARD_ISSUANCE", "form_factor": "VIRTUAL", "prices": eur(300)},
            {"type": "CARD_ISSUANCE", "form_factor": "PHYSICAL", "prices": eur(1_200)},
        ],
    )
    virtual = await _issued(client, partner, setup)
    physical = await _issued(client, partner, setup, type="PHYSICAL", delivery_address=DELIVERY)

    lines = {}
    for card, price in ((virtual, 300), (physical, 1_200)):
        (line,) = await fees_of(client, partner.headers, card_id=card["id"])
        assert (line["type"], line["status"], line["amount"], line["currency"]) == (
            "CARD_ISSUANCE",
            "CHARGED",
            price,
            "EUR",
        )
        assert (line["balance_id"], line["schedule_id"], line["refunded_amount"]) == (
            setup.holder.balance_id,
            schedule["id"],
            0,
        )
        assert line["ledger_transfer_id"].startswith("ltr_")
        assert line["charged_at"] is not None
        assert (line["waiver"], line["reason"], line["transaction_id"]) == (None, None, None)
        lines[card["id"]] = line
    assert (await _balance(client, partner, setup.holder.balance_id))["total"] == 10_000 - 1_500

    # The balance's ledger shows each as a `fee` debit, the fee line names its transfer.
    entries = await _fee_entries(client, partner, setup.holder.balance_id)
    assert sorted(entries) == sorted(
        ("debit", line["amount"], line["ledger_transfer_id"]) for line in lines.values()
    )
    # One fee.charged event each, about the fee line, naming the card and the transfer.
    charged = await _events(client, partner, "fee.charged")
    assert {e["object_id"]: e["data"] for e in charged} == {
        line["id"]: {
            "fee_id": line["id"],
            "type": "CARD_ISSUANCE",
            "amount": line["amount"],
            "currency": "EUR",
            "balance_id": setup.holder.balance_id,
            "card_id": card_id,
            "transaction_id": None,
            "money_transfer_id": None,
            "ledger_transfer_id": line["ledger_transfer_id"],
        }
        for card_id, line in lines.items()
    }
    assert await verify(session) == []


async def test_replacement_fee_and_no_issuance_fee_for_the_replacement(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await reload(client, partner, setup.holder.balance_id, 10_000)
    await set_schedule(
        client,
        setup.admin.token,
        [
            {"type": "CARD_ISSUANCE", "prices": eur(500)},
            {"type": "CARD_REPLACEMENT", "prices": eur(700)},
        ],
    )
    card = await _issued(client, partner, setup)
    new = await _replace(client, partner, card["id"], "LOST")
    assert new["replacement_for"] == card["id"]

    (line,) = await fees_of(client, partner.headers, card_id=new["id"])
    assert (line["type"], line["status"], line["amount"]) == ("CARD_REPLACEMENT", "CHARGED", 700)
    # The old card paid its issuance once; nothing more was charged for it.
    assert [f["type"] for f in await fees_of(client, partner.headers, card_id=card["id"])] == [
        "CARD_ISSUANCE"
    ]
    # Renewing (same card, new expiry) and declining a report charge nothing.
    for action in ("renew", "decline"):
        report = await client.post(
            f"/v1/cards/{new['id']}/reports", json={"reason": "DAMAGED"}, headers=partner.headers
        )
        done = await client.post(
            f"/v1/card-reports/{report.json()['data']['id']}/{action}",
            json={} if action == "decline" else None,
            headers=partner.headers,
        )
        assert done.status_code == 200, (action, done.text)
    assert len(await fees_of(client, partner.headers, balance_id=setup.holder.balance_id)) == 2
    assert (await _balance(client, partner, setup.holder.balance_id))["total"] == 10_000 - 1_200
    assert await verify(session) == []


async def test_physical_conversion_pays_the_physical_issuance_fee(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await reload(client, partner, setup.holder.balance_id, 10_000)
    await set_schedule(
        client,
        setup.admin.token,
        [
            {"type": "CARD_ISSUANCE", "form_factor": "VIRTUAL", "prices": eur(100)},
            {"type": "CARD_ISSUANCE", "form_factor": "PHYSICAL", "prices": eur(900)},
        ],
    )
    virtual = await _issued(client, partner, setup)

    async def request() -> str:
        made = await client.post(
            f"/v1/cards/{virtual['id']}/physical-requests",
            json={"embossing_name": "ZOFIA KOWALSKA", "delivery_address": DELIVERY},
            headers=partner.headers,
        )
        assert made.status_code == 201, made.text
        return made.json()["data"]["id"]  # type: ignore[no-any-return]

    rejected = await client.post(
        f"/v1/physical-requests/{await request()}/reject", json={}, headers=partner.headers
    )
    assert rejected.status_code == 200, rejected.text
    assert len(await fees_of(client, partner.headers, balance_id=setup.holder.balance_id)) == 1

    approved = await client.post(
        f"/v1/physical-requests/{await request()}/approve", headers=partner.headers
    )
    assert approved.status_code == 200, approved.text
    physical_id = approved.json()["data"]["physical_card_id"]
    (line,) = await fees_of(client, partner.headers, card_id=physical_id)
    assert (line["type"], line["status"], line["amount"]) == ("CARD_ISSUANCE", "CHARGED", 900)
    assert (await _balance(client, partner, setup.holder.balance_id))["total"] == 10_000 - 1_000


async def test_first_cards_free_waives_the_first_n_and_replacements_do_not_count(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await reload(client, partner, setup.holder.balance_id, 10_000)
    await set_schedule(
        client,
        setup.admin.token,
        [
            {
                "type": "CARD_ISSUANCE",
                "prices": eur(400),
                "waivers": [{"rule": "FIRST_CARDS_FREE", "count": 2}],
            }
        ],
    )
    first = await _issued(client, partner, setup)
    # A replacement is not one of the user's cards for this rule...
    await _replace(client, partner, first["id"], "DAMAGED")
    # ...so this is the second, still free, and the one after it pays.
    second = await _issued(client, partner, setup)
    third = await _issued(client, partner, setup)

    shown = [
        (await fees_of(client, partner.headers, card_id=card["id"]))[0]
        for card in (first, second, third)
    ]
    assert [(f["status"], f["amount"]) for f in shown] == [
        ("WAIVED", 400),
        ("WAIVED", 400),
        ("CHARGED", 400),
    ]
    assert [f["waiver"] for f in shown] == [
        {"rule": "FIRST_CARDS_FREE", "count": 2, "earlier_cards": 0},
        {"rule": "FIRST_CARDS_FREE", "count": 2, "earlier_cards": 1},
        None,
    ]
    assert [f["ledger_transfer_id"] is None for f in shown] == [True, True, False]
    assert (await _balance(client, partner, setup.holder.balance_id))["total"] == 10_000 - 400
    assert await _fee_entries(client, partner, setup.holder.balance_id) == [
        ("debit", 400, shown[2]["ledger_transfer_id"])
    ]
    waived = await _events(client, partner, "fee.waived")
    assert sorted((e["object_id"], e["data"]["rule"]) for e in waived) == sorted(
        (f["id"], "FIRST_CARDS_FREE") for f in shown[:2]
    )
    assert [e["object_id"] for e in await _events(client, partner, "fee.charged")] == [
        shown[2]["id"]
    ]

    # The count is per user: another cardholder's first card is free.
    other = await make_cardholder(app, partner, phone="+48601230001")
    theirs = await _issued(client, partner, replace(setup, holder=other))
    (line,) = await fees_of(client, partner.headers, card_id=theirs["id"])
    assert (line["status"], line["waiver"]["earlier_cards"]) == ("WAIVED", 0)


async def test_a_retried_request_or_a_second_call_charges_once(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await reload(client, partner, setup.holder.balance_id, 10_000)
    await set_schedule(client, setup.admin.token, [{"type": "CARD_ISSUANCE", "prices": eur(500)}])

    body = {
        "type": "VIRTUAL",
        "product_id": setup.product.id,
        "user_id": setup.holder.user_id,
        "balance_id": setup.holder.balance_id,
    }
    retried = {**partner.headers, "Idempotency-Key": "issue-once"}
    replies = [await client.post("/v1/cards", json=body, headers=retried) for _ in range(2)]
    assert [r.status_code for r in replies] == [201, 201]
    assert replies[0].json() == replies[1].json()
    card_id = replies[0].json()["data"]["id"]
    assert len(await fees_of(client, partner.headers, card_id=card_id)) == 1

    # Whatever calls the fee hook again for the same card finds its line there: the fee's key
    # (its cause) is unique.
    card = await session.get(Card, card_id)
    assert card is not None
    assert await fees.on_card_issued(session, card) is None
    balance = await session.get(Balance, setup.holder.balance_id)
    assert balance is not None
    await set_schedule(client, setup.admin.token, [{"type": "BALANCE_CREATION", "prices": eur(50)}])
    assert await fees.on_balance_created(session, balance) is not None
    assert await fees.on_balance_created(session, balance) is None
    await session.flush()

    lines = await fees_of(client, partner.headers, balance_id=setup.holder.balance_id)
    assert sorted((f["type"], f["status"]) for f in lines) == [
        ("BALANCE_CREATION", "CHARGED"),
        ("CARD_ISSUANCE", "CHARGED"),
    ]
    assert (await _balance(client, partner, setup.holder.balance_id))["total"] == 10_000 - 550
    assert len(await _fee_entries(client, partner, setup.holder.balance_id)) == 2
    assert await verify(session) == []


# -- when the balance cannot pay -----------------------------------------------------------------


async def test_skip_policy_leaves_the_balance_untouched(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await set_schedule(
        client,
        setup.admin.token,
        [
            {"type": "BALANCE_CREATION", "prices": eur(250)},
            {"type": "CARD_ISSUANCE", "prices": eur(500)},
        ],
    )
    # SKIP is the default. A new balance is empty, so its creation fee cannot be paid.
    balance = await open_balance(client, partner)
    (line,) = await fees_of(client, partner.headers, balance_id=balance["id"])
    assert (line["type"], line["status"], line["amount"], line["reason"]) == (
        "BALANCE_CREATION",
        "SKIPPED",
        250,
        "INSUFFICIENT_FUNDS",
    )
    assert line["ledger_transfer_id"] is None
    shown = await _balance(client, partner, balance["id"])
    assert (shown["total"], shown["available"]) == (0, 0)
    assert await _fee_entries(client, partner, balance["id"]) == []
    (skipped,) = await _events(client, partner, "fee.skipped")
    assert (skipped["object_id"], skipped["data"]["reason"], skipped["data"]["type"]) == (
        line["id"],
        "INSUFFICIENT_FUNDS",
        "BALANCE_CREATION",
    )

    # A card on an empty balance is still issued; its fee is skipped, and not taken later.
    card = await _issued(client, partner, setup)
    (card_fee,) = await fees_of(client, partner.headers, card_id=card["id"])
    assert (card_fee["status"], card_fee["reason"]) == ("SKIPPED", "INSUFFICIENT_FUNDS")
    await reload(client, partner, setup.holder.balance_id, 1_000)
    assert await fees.retry_due(session, now=datetime.now(UTC) + timedelta(days=30)) == 0
    assert (await _balance(client, partner, setup.holder.balance_id))["total"] == 1_000
    assert await _events(client, partner, "fee.charged") == []


async def test_retry_policy_charges_once_funded(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await set_policy(client, setup.admin.token, fee_shortfall_policy="RETRY", fee_retry_days=3)
    await set_schedule(
        client, setup.admin.token, [{"type": "BALANCE_CREATION", "prices": eur(250)}]
    )
    start = datetime.now(UTC)
    balance = await open_balance(client, partner)
    (line,) = await fees_of(client, partner.headers, balance_id=balance["id"])
    assert (line["status"], line["reason"], line["ledger_transfer_id"]) == (
        "DUE",
        "INSUFFICIENT_FUNDS",
        None,
    )
    assert await _events(client, partner, "fee.skipped") == []

    # Not yet its day: nothing is tried.
    assert await fees.retry_due(session, now=start + timedelta(hours=12)) == 0
    # Its day, still no money: still due.
    assert await fees.retry_due(session, now=start + timedelta(days=1, hours=1)) == 1
    await session.flush()
    assert (await _fee(client, partner, line["id"]))["status"] == "DUE"

    # Money that comes in some other way than a reload (straight through the ledger here, as a
    # card refund would) waits for the next daily try.
    account = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == balance["id"])
    )
    assert account is not None
    funding = await ledger.system_account_id(
        session, program_id=partner.program_id, currency="EUR", kind="funding"
    )
    await ledger.transfer(
        session,
        program_id=partner.program_id,
        debit_account_id=funding,
        credit_account_id=account,
        amount=1_000,
        currency="EUR",
        code="test",
    )
    await session.flush()
    session.expire_all()
    assert (await _fee(client, partner, line["id"]))["status"] == "DUE"
    day_three = start + timedelta(days=2, hours=1)
    assert await fees.retry_due(session, now=day_three) == 1
    await session.flush()
    # Running the retry again charges nothing more.
    session.expire_all()
    assert await fees.retry_due(session, now=day_three) == 0
    assert await fees.retry_due(session, now=day_three + timedelta(days=5)) == 0
    await session.flush()

    charged = await _fee(client, partner, line["id"])
    assert (charged["status"], charged["reason"], charged["amount"]) == ("CHARGED", None, 250)
    assert (await _balance(client, partner, balance["id"]))["total"] == 750
    assert await _fee_entries(client, partner, balance["id"]) == [
        ("debit", 250, charged["ledger_transfer_id"])
    ]
    assert [e["object_id"] for e in await _events(client, partner, "fee.charged")] == [line["id"]]
    assert await verify(session) == []


async def test_a_reload_pays_the_fees_waiting_for_funds_at_once(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await set_policy(client, setup.admin.token, fee_shortfall_policy="RETRY", fee_retry_days=3)
    await set_schedule(
        client,
        setup.admin.token,
        [
            {"type": "BALANCE_CREATION", "prices": eur(250)},
            {"type": "CARD_ISSUANCE", "prices": eur(500)},
        ],
    )
    balance = await open_balance(client, partner)
    card = (
        await issue(
            client,
            partner,
            setup,
            user_id=balance["owner_id"],
            balance_id=balance["id"],
        )
    ).json()["data"]
    assert [
        f["status"] for f in await fees_of(client, partner.headers, balance_id=balance["id"])
    ] == [
        "DUE",
        "DUE",
    ]
    # 600 pays the older fee (250); the card's 500 no longer fits and keeps waiting.
    assert (await reload(client, partner, balance["id"], 600)).status_code == 200
    lines = await fees_of(client, partner.headers, balance_id=balance["id"])
    assert sorted((f["type"], f["status"]) for f in lines) == [
        ("BALANCE_CREATION", "CHARGED"),
        ("CARD_ISSUANCE", "DUE"),
    ]
    assert (await reload(client, partner, balance["id"], 400)).status_code == 200
    (issuance,) = await fees_of(client, partner.headers, card_id=card["id"])
    assert issuance["status"] == "CHARGED"
    assert (await _balance(client, partner, balance["id"]))["total"] == 1_000 - 750
    assert len(await _events(client, partner, "fee.charged")) == 2
    assert await verify(session) == []


async def test_retry_policy_gives_up_after_the_retry_days(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await set_policy(client, setup.admin.token, fee_shortfall_policy="RETRY", fee_retry_days=2)
    await set_schedule(
        client, setup.admin.token, [{"type": "BALANCE_CREATION", "prices": eur(250)}]
    )
    start = datetime.now(UTC)
    balance = await open_balance(client, partner)
    (line,) = await fees_of(client, partner.headers, balance_id=balance["id"])

    # Retried once a day for two days (a late job run does not cost a day), then skipped.
    for day, status in ((1, "DUE"), (2, "SKIPPED")):
        session.expire_all()
        assert await fees.retry_due(session, now=start + timedelta(days=day, hours=3)) == 1
        await session.flush()
        assert (await _fee(client, partner, line["id"]))["status"] == status, day
    skipped = await _fee(client, partner, line["id"])
    assert skipped["reason"] == "INSUFFICIENT_FUNDS after 3 attempts"
    assert [e["object_id"] for e in await _events(client, partner, "fee.skipped")] == [line["id"]]

    # Money arriving afterwards is not taken for it.
    await reload(client, partner, balance["id"], 1_000)
    session.expire_all()
    assert await fees.retry_due(session, now=start + timedelta(days=30)) == 0
    assert (await _balance(client, partner, balance["id"]))["total"] == 1_000
    assert await _events(client, partner, "fee.charged") == []


async def test_allow_negative_goes_below_zero_up_to_the_limit_and_a_reload_pays_it_back(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await set_policy(
        client,
        setup.admin.token,
        fee_shortfall_policy="ALLOW_NEGATIVE",
        fee_overdraft_limits={"EUR": 1_000},
    )
    await set_schedule(
        client,
        setup.admin.token,
        [
            {"type": "BALANCE_CREATION", "prices": eur(600)},
            {"type": "CARD_ISSUANCE", "form_factor": "VIRTUAL", "prices": eur(300)},
            {"type": "CARD_ISSUANCE", "form_factor": "PHYSICAL", "prices": eur(500)},
        ],
    )
    holder = await make_cardholder(app, partner, phone="+48601230002")
    world = replace(setup, holder=holder)
    (creation,) = await fees_of(client, partner.headers, balance_id=holder.balance_id)
    assert (creation["status"], creation["amount"]) == ("CHARGED", 600)
    shown = await _balance(client, partner, holder.balance_id)
    assert (shown["total"], shown["available"]) == (-600, -600)

    # 300 more takes it to -900, within the limit; 500 more would be -1,400: skipped.
    virtual = await _issued(client, partner, world)
    physical = await _issued(client, partner, world, type="PHYSICAL", delivery_address=DELIVERY)
    (virtual_fee,) = await fees_of(client, partner.headers, card_id=virtual["id"])
    (physical_fee,) = await fees_of(client, partner.headers, card_id=physical["id"])
    assert (virtual_fee["status"], physical_fee["status"], physical_fee["reason"]) == (
        "CHARGED",
        "SKIPPED",
        "OVERDRAFT_LIMIT_REACHED",
    )
    assert (await _balance(client, partner, holder.balance_id))["total"] == -900
    (skipped,) = await _events(client, partner, "fee.skipped")
    assert skipped["data"]["reason"] == "OVERDRAFT_LIMIT_REACHED"

    # While negative, the card cannot spend: the overdraft is for fees only.
    key = await client.post(
        "/v1/admin/network-keys", json={"name": "processor"}, headers=setup.admin.headers
    )
    network = {"X-API-Key": key.json()["data"]["secret"]}

    async def authorize(amount: int, ntx: str) -> dict[str, Any]:
        answer = await client.post(
            "/v1/network/authorizations",
            json={
                "card_id": virtual["id"],
                "amount": amount,
                "currency": "EUR",
                "merchant": {"name": "Shop", "mcc": "5411", "country": "PL"},
                "channel": "POS",
                "entry_mode": "CHIP",
                "network": {"network_transaction_id": ntx},
            },
            headers=network,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    declined = await authorize(100, "fee-negative-1")
    assert (declined["approved"], declined["response_code"]) == (False, "51")
    assert (await _balance(client, partner, holder.balance_id))["total"] == -900

    # Nor can any other transfer take it lower: only a fee's transfer carries the allowance...
    account_id = (await session.get(Balance, holder.balance_id)).ledger_account_id  # type: ignore[union-attr]
    funding = await ledger.system_account_id(
        session, program_id=partner.program_id, currency="EUR", kind="funding"
    )
    with pytest.raises(ledger.Overdraft):
        await ledger.transfer(
            session,
            program_id=partner.program_id,
            debit_account_id=account_id,
            credit_account_id=funding,
            amount=1,
            currency="EUR",
            code="test",
        )
    # ...and the CHECK constraint refuses a write that goes past the allowance, whatever the
    # code: the account may be 1,000 below zero and is 900 below.
    assert (
        await session.scalar(
            select(LedgerAccount.overdraft_limit).where(LedgerAccount.id == account_id)
        )
        == 1_000
    )
    for more in (100, 101):
        overdraw = (
            update(LedgerAccount)
            .where(LedgerAccount.id == account_id)
            .values(debits_posted=LedgerAccount.debits_posted + more)
        )
        if more == 100:  # down to the allowance: the database lets it (undone at once)
            async with session.begin_nested() as nested:
                await session.execute(overdraw)
                await nested.rollback()
        else:
            with pytest.raises(IntegrityError):
                async with session.begin_nested():
                    await session.execute(overdraw)

    # A reload pays the overdraft back first; then the card spends again.
    reloaded = await reload(client, partner, holder.balance_id, 1_500)
    assert reloaded.status_code == 200, reloaded.text
    assert (await _balance(client, partner, holder.balance_id))["total"] == 600
    approved = await authorize(100, "fee-negative-2")
    assert (approved["approved"], approved["response_code"]) == (True, "00")
    assert (await _balance(client, partner, holder.balance_id))["available"] == 500
    assert await verify(session) == []
