"""Issuance, reading, reveal, PIN, CVV, the physical journey, activation, holder checks."""

import hashlib
import json
import re
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.cards.security import cvk_pair, cvv, luhn_valid
from cardcore.config import Settings
from cardcore.kit.jobs import JobContext, JobQueue
from cardcore.kit.logging import luhn_valid as log_luhn
from cardcore.worker import JOBS
from tests.cards.helpers import issue, issue_encrypted
from tests.factories import (
    DELIVERY,
    CardProgram,
    Partner,
    bearer,
    make_admin,
    make_card_program,
    make_cardholder,
    make_product,
)
from tests.harness import CVK_A, CVK_B
from tests.kit.jose import CALLER_KEY, decrypt_answer, encrypted_post, opened, public_key_header


@pytest.fixture
async def setup(app: FastAPI, partner: Partner) -> CardProgram:
    return await make_card_program(app, partner)


async def reveal(
    client: AsyncClient, partner: Partner, card_id: str, fields: list[str] | None = None
) -> dict[str, Any]:
    body = {"fields": fields} if fields else {}
    return opened(
        await encrypted_post(client, f"/v1/cards/{card_id}/reveal", body, partner.headers)
    )["data"]


async def test_a_virtual_card_is_active_and_masked(
    client: AsyncClient, partner: Partner, setup: CardProgram
) -> None:
    response = await issue(client, partner, setup)
    assert response.status_code == 201, response.text
    card = response.json()["data"]
    assert (card["type"], card["status"], card["network"]) == ("VIRTUAL", "ACTIVE", "VISA")
    assert re.fullmatch(r"45717360\*{4}\d{4}", card["masked_pan"])
    assert card["fulfillment"] is None
    balance = (
        await client.get(f"/v1/balances/{setup.holder.balance_id}", headers=partner.headers)
    ).json()["data"]
    assert balance["cards"] == [card["id"]]
    data = await reveal(client, partner, card["id"])
    assert data["pan"].startswith("45717360")
    assert data["pan"].endswith(card["last4"])
    assert luhn_valid(data["pan"])
    assert data["expiry"] == f"{card['expiry_month']:02d}/{card['expiry_year'] % 100:02d}"
    expiry = f"{card['expiry_year'] % 100:02d}{card['expiry_month']:02d}"
    assert data["cvv"] == cvv(
        data["pan"], expiry, "000", bytes.fromhex(CVK_A), bytes.fromhex(CVK_B)
    )


async def test_pans_are_unique_and_luhn_valid(
    client: AsyncClient, partner: Partner, setup: CardProgram
) -> None:
    pans = set()
    for _ in range(15):
        card = (await issue(client, partner, setup)).json()["data"]
        pans.add((await reveal(client, partner, card["id"], ["pan"]))["pan"])
    assert len(pans) == 15
    assert all(luhn_valid(p) for p in pans)


async def test_a_colliding_processor_gets_a_clear_error(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    app: FastAPI,
) -> None:
    class SameNumber:
        name = "same"

        def new_pan(self, bin: str, length: int) -> str:
            return "4571736000000008"

        async def order_plastic(
            self, card_id: str, embossing_name: str, address: dict[str, Any]
        ) -> str:
            return "x"

    from dataclasses import replace

    app.state.card_services = replace(app.state.card_services, processor=SameNumber())
    assert (await issue(client, partner, setup)).status_code == 201
    second = await issue(client, partner, setup)
    assert (second.status_code, second.json()["code"]) == (409, "BIN_EXHAUSTED")


async def test_preconditions(
    client: AsyncClient, app: FastAPI, partner: Partner, setup: CardProgram, session: AsyncSession
) -> None:
    unapproved = await make_cardholder(app, partner, approve=False)
    refused = await issue(
        client, partner, setup, user_id=unapproved.user_id, balance_id=setup.holder.balance_id
    )
    assert refused.json()["code"] == "KYC_NOT_APPROVED"
    other = await make_cardholder(app, partner)
    theirs = await issue(client, partner, setup, balance_id=other.balance_id)
    assert theirs.json()["errors"][0]["code"] == "NOT_THE_OWNERS"
    virtual_only = await make_product(app, partner, name="V", form_factors=["VIRTUAL"])
    physical = await issue(
        client,
        partner,
        setup,
        type="PHYSICAL",
        product_id=virtual_only.id,
        delivery_address=DELIVERY,
    )
    assert physical.json()["code"] == "FORM_FACTOR_NOT_ALLOWED"
    bad_name = await issue(client, partner, setup, embossing_name="SOMEONE ELSE")
    assert bad_name.json()["code"] == "EMBOSSING_NAME_NOT_ALLOWED"
    await client.post(f"/v1/balances/{setup.holder.balance_id}/block", headers=partner.headers)
    blocked = await issue(client, partner, setup)
    assert blocked.json()["code"] == "BALANCE_NOT_ACTIVE"
    await client.post(f"/v1/balances/{setup.holder.balance_id}/unblock", headers=partner.headers)
    missing = await issue(client, partner, setup, product_id="prd_01m80k0t4srfsqm4vtjebjnzfq")
    assert missing.status_code == 404


async def test_reveal_needs_jwe_and_refuses_admins(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    plain = await client.post(f"/v1/cards/{card['id']}/reveal", json={}, headers=partner.headers)
    assert (plain.status_code, plain.json()["code"]) == (400, "ENCRYPTION_REQUIRED")
    admin = await encrypted_post(client, f"/v1/cards/{card['id']}/reveal", {}, setup.admin.headers)
    assert admin.status_code == 403
    only_last = await reveal(client, partner, card["id"], ["expiry"])
    assert only_last["pan"] is None
    assert only_last["cvv"] is None


async def test_cvv_reset_changes_the_answer(
    client: AsyncClient, partner: Partner, setup: CardProgram
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    before = await reveal(client, partner, card["id"])
    reset = await client.post(f"/v1/cards/{card['id']}/reset-cvv", headers=partner.headers)
    assert reset.status_code == 200
    after = await reveal(client, partner, card["id"])
    assert after["pan"] == before["pan"]
    assert after["cvv"] != before["cvv"]
    expiry = f"{card['expiry_year'] % 100:02d}{card['expiry_month']:02d}"
    keys = (bytes.fromhex(CVK_A), bytes.fromhex(CVK_B))
    assert after["cvv"] == cvv(after["pan"], expiry, "000", *cvk_pair(*keys, 1))
    assert before["cvv"] != cvv(after["pan"], expiry, "000", *cvk_pair(*keys, 1)), "old CVV stops"


async def test_pin(
    client: AsyncClient, partner: Partner, setup: CardProgram, app: FastAPI, session: AsyncSession
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    plain = await client.put(
        f"/v1/cards/{card['id']}/pin", json={"pin": "7391"}, headers=partner.headers
    )
    assert plain.json()["code"] == "ENCRYPTION_REQUIRED"
    weak = await encrypted_post(
        client, f"/v1/cards/{card['id']}/pin", {"pin": "1234"}, partner.headers, "PUT"
    )
    assert weak.json()["code"] == "PIN_TOO_WEAK"
    done = opened(
        await encrypted_post(
            client, f"/v1/cards/{card['id']}/pin", {"pin": "739184"}, partner.headers, "PUT"
        )
    )
    assert done["data"]["pin_set"] is True
    from cardcore.cards.service import pin_matches
    from cardcore.models import Card

    row = await session.get(Card, card["id"])
    assert row is not None
    await session.refresh(row)
    assert pin_matches(app.state.card_services, row, "739184")
    assert not pin_matches(app.state.card_services, row, "739185")


async def test_a_pin_at_issue_travels_only_encrypted(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    app: FastAPI,
    session: AsyncSession,
) -> None:
    physical = {"type": "PHYSICAL", "delivery_address": DELIVERY, "pin": "739184"}
    for query in ("", "?async=true"):
        plain = await client.post(
            f"/v1/cards{query}",
            json={"product_id": setup.product.id, "user_id": setup.holder.user_id, **physical},
            headers=partner.headers,
        )
        assert plain.status_code == 400, plain.text
        assert plain.json()["code"] == "ENCRYPTION_REQUIRED"
        assert plain.json()["errors"][0]["field"] == "pin"
        assert "739184" not in plain.text
    # Asking only for an encrypted answer leaves the PIN in a clear body: refused too.
    half = await client.post(
        "/v1/cards",
        json={"product_id": setup.product.id, "user_id": setup.holder.user_id, **physical},
        headers={
            **partner.headers,
            "Public-Key": public_key_header(CALLER_KEY),
            "Encrypt-Response": "true",
        },
    )
    assert half.json()["code"] == "ENCRYPTION_REQUIRED"
    listed = await client.get("/v1/cards", headers=partner.headers)
    assert listed.json()["data"] == [], "nothing was issued"
    requests = (await session.execute(text("SELECT count(*) FROM card_requests"))).scalar()
    assert requests == 0

    # Without a PIN the plain body still works; with JWE a PIN is set.
    assert (await issue(client, partner, setup)).status_code == 201
    card = opened(await issue_encrypted(client, partner, setup, **physical))["data"]
    assert (card["type"], card["pin_set"]) == ("PHYSICAL", True)
    from cardcore.cards.service import pin_matches
    from cardcore.models import Card

    row = await session.get(Card, card["id"])
    assert row is not None
    assert pin_matches(app.state.card_services, row, "739184")


async def test_an_asynchronous_issue_keeps_no_pin_while_it_waits(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    app: FastAPI,
    session: AsyncSession,
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    physical = {"type": "PHYSICAL", "delivery_address": DELIVERY, "pin": "739184"}
    accepted = await issue_encrypted(client, partner, setup, "?async=true", **physical)
    assert accepted.status_code == 202, accepted.text
    request = decrypt_answer(CALLER_KEY, accepted.json())["data"]
    stored = (await session.execute(text("SELECT payload::text FROM card_requests"))).scalar_one()
    assert "739184" not in stored
    weak = await issue_encrypted(
        client, partner, setup, "?async=true", **{**physical, "pin": "1234"}
    )
    assert weak.json()["code"] == "PIN_TOO_WEAK", "refused at once, not after the 202"
    queue = JobQueue(sessionmaker, JOBS, JobContext(settings=settings, keyring=app.state.keyring))
    while await queue.run_one():
        pass
    done = (await client.get(f"/v1/requests/{request['id']}", headers=partner.headers)).json()
    assert done["data"]["status"] == "COMPLETED", done
    from cardcore.cards.service import pin_matches
    from cardcore.models import Card

    row = await session.get(Card, done["data"]["card_id"])
    assert row is not None
    await session.refresh(row)
    assert pin_matches(app.state.card_services, row, "739184")
    assert not pin_matches(app.state.card_services, row, "739185")


async def test_an_idempotency_record_does_not_give_the_pin_back(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
) -> None:
    body = {
        "type": "PHYSICAL",
        "product_id": setup.product.id,
        "user_id": setup.holder.user_id,
        "balance_id": setup.holder.balance_id,
        "delivery_address": DELIVERY,
        "pin": "7391",
    }
    headers = {**partner.headers, "Idempotency-Key": "pin-at-issue"}
    first = await encrypted_post(client, "/v1/cards", body, headers)
    assert first.status_code == 201, first.text
    stored = (
        await session.execute(text("SELECT request_hash FROM idempotency_records"))
    ).scalar_one()

    # Someone with the table, the request's other fields (all in the card's row) and every
    # four-digit PIN must not find the one that was sent.
    def unkeyed(pin: str) -> set[bytes]:
        plaintext = json.dumps({**body, "pin": pin}).encode()
        framed = hashlib.sha256()
        for part in (b"POST", b"/v1/cards", b""):
            framed.update(len(part).to_bytes(4, "big") + part)
        framed.update(plaintext)
        return {framed.digest(), hashlib.sha256(plaintext).digest()}

    guesses = set().union(*(unkeyed(f"{n:04d}") for n in range(10_000)))
    assert stored not in guesses
    again = await encrypted_post(client, "/v1/cards", body, headers)
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert opened(again)["data"]["id"] == opened(first)["data"]["id"]


async def test_the_physical_journey(
    client: AsyncClient, partner: Partner, setup: CardProgram
) -> None:
    card = opened(
        await issue_encrypted(
            client, partner, setup, type="PHYSICAL", delivery_address=DELIVERY, pin="2580"
        )
    )["data"]
    assert (card["status"], card["fulfillment"]["status"], card["pin_set"]) == (
        "INACTIVE",
        "ORDERED",
        True,
    )
    assert card["embossing_name"] == "ZOFIA MARIA KOWALSKA"
    base = f"/v1/cards/{card['id']}"

    async def step(path: str, body: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
        return await client.post(base + path, json=body, headers=partner.headers)

    # Refused at every point before its time.
    for path, body in (
        ("/manufacturing", {"result": "MANUFACTURED"}),
        ("/delivery", {"status": "SHIPPED"}),
    ):
        assert (await step(path, body)).json()["code"] == "INVALID_FULFILLMENT_TRANSITION"
    assert (await step("/activate")).json()["code"] == "CARD_NOT_ACTIVATABLE"
    assert (await step("/process-request")).json()["data"]["fulfillment"][
        "status"
    ] == "ISSUANCE_IN_PROGRESS"
    assert (await step("/process-request")).json()["code"] == "INVALID_FULFILLMENT_TRANSITION"
    assert (await step("/delivery", {"status": "SHIPPED"})).json()[
        "code"
    ] == "INVALID_FULFILLMENT_TRANSITION"
    assert (await step("/manufacturing", {"result": "MANUFACTURED"})).status_code == 200
    assert (await step("/manufacturing", {"result": "MANUFACTURED"})).json()[
        "code"
    ] == "INVALID_FULFILLMENT_TRANSITION"
    assert (await step("/delivery", {"status": "DELIVERED"})).json()[
        "code"
    ] == "INVALID_FULFILLMENT_TRANSITION"
    assert (await step("/activate")).json()["code"] == "CARD_NOT_ACTIVATABLE"
    shipped = await step(
        "/delivery", {"status": "SHIPPED", "carrier": "DHL", "tracking_number": "JD0001"}
    )
    assert shipped.json()["data"]["fulfillment"] | {"delivery_address": None} == {
        "status": "SHIPPED",
        "carrier": "DHL",
        "tracking_number": "JD0001",
        "delivery_address": None,
    }
    assert (await step("/delivery", {"status": "DELIVERED"})).status_code == 200
    assert (await step("/delivery", {"status": "RETURNED"})).json()[
        "code"
    ] == "INVALID_FULFILLMENT_TRANSITION"
    activated = await step("/activate")
    assert activated.json()["data"]["status"] == "ACTIVE"
    assert (await step("/activate")).json()["code"] == "CARD_NOT_ACTIVATABLE"


async def test_manufacturing_can_fail_and_ops_may_drive_the_journey(
    client: AsyncClient,
    app: FastAPI,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
) -> None:
    employee = (await make_admin(app, partner, "employee")).token
    card = (await issue(client, partner, setup, type="PHYSICAL", delivery_address=DELIVERY)).json()[
        "data"
    ]
    base = f"/v1/cards/{card['id']}"
    assert (
        await client.post(base + "/process-request", headers=bearer(employee))
    ).status_code == 200
    failed = await client.post(
        base + "/manufacturing", json={"result": "MANUFACTURING_FAILED"}, headers=bearer(employee)
    )
    assert failed.json()["data"]["fulfillment"]["status"] == "MANUFACTURING_FAILED"
    assert (
        await client.post(base + "/delivery", json={"status": "SHIPPED"}, headers=bearer(employee))
    ).status_code == 409
    # An employee may not issue cards (admins and managers may).
    refused = await client.post(
        "/v1/cards",
        json={
            "type": "VIRTUAL",
            "product_id": setup.product.id,
            "user_id": setup.holder.user_id,
            "balance_id": setup.holder.balance_id,
        },
        headers=bearer(employee),
    )
    assert refused.status_code == 403
    manager_made = await client.post(
        "/v1/cards",
        json={
            "type": "VIRTUAL",
            "product_id": setup.product.id,
            "user_id": setup.holder.user_id,
            "balance_id": setup.holder.balance_id,
        },
        headers=setup.admin.headers,
    )
    assert manager_made.status_code == 201


async def test_activation_by_pan_and_expiry(
    client: AsyncClient, partner: Partner, setup: CardProgram, other_partner: Partner
) -> None:
    card = (await issue(client, partner, setup, type="PHYSICAL", delivery_address=DELIVERY)).json()[
        "data"
    ]
    pan = (await reveal(client, partner, card["id"], ["pan"]))["pan"]
    expiry = f"{card['expiry_month']:02d}/{card['expiry_year'] % 100:02d}"
    plain = await client.post(
        "/v1/cards/activate", json={"pan": pan, "expiry": expiry}, headers=partner.headers
    )
    assert plain.json()["code"] == "ENCRYPTION_REQUIRED"
    not_yet = await encrypted_post(
        client, "/v1/cards/activate", {"pan": pan, "expiry": expiry}, partner.headers
    )
    assert not_yet.json()["code"] == "CARD_NOT_ACTIVATABLE"
    for path, body in (
        ("/process-request", None),
        ("/manufacturing", {"result": "MANUFACTURED"}),
        ("/delivery", {"status": "SHIPPED"}),
    ):
        await client.post(f"/v1/cards/{card['id']}{path}", json=body, headers=partner.headers)
    wrong = await encrypted_post(
        client, "/v1/cards/activate", {"pan": pan, "expiry": "01/20"}, partner.headers
    )
    assert wrong.status_code == 404
    elsewhere = await encrypted_post(
        client, "/v1/cards/activate", {"pan": pan, "expiry": expiry}, other_partner.headers
    )
    assert elsewhere.status_code == 404
    done = opened(
        await encrypted_post(
            client, "/v1/cards/activate", {"pan": pan, "expiry": expiry}, partner.headers
        )
    )
    assert done["data"]["status"] == "ACTIVE"


async def test_gift_cards(
    client: AsyncClient, app: FastAPI, partner: Partner, setup: CardProgram
) -> None:
    gift = await make_product(
        app,
        partner,
        name="Gift",
        kind="GIFT",
        form_factors=["VIRTUAL"],
        kyc_required=False,
        max_load=5_000,
    )
    buyer = await make_cardholder(app, partner, approve=False)
    too_much = await issue(
        client,
        partner,
        setup,
        type="GIFT",
        product_id=gift.id,
        user_id=buyer.user_id,
        balance_id=None,
        gift_amount=5_001,
    )
    assert too_much.json()["code"] == "GIFT_LOAD_EXCEEDS_MAX"
    made = await issue(
        client,
        partner,
        setup,
        type="GIFT",
        product_id=gift.id,
        user_id=buyer.user_id,
        balance_id=None,
        gift_amount=2_500,
        gift_recipient_name="Ola",
        gift_message="Happy birthday!",
    )
    assert made.status_code == 201, made.text
    card = made.json()["data"]
    assert (card["status"], card["gift_recipient_name"]) == ("ACTIVE", "Ola")
    balance = (
        await client.get(f"/v1/balances/{card['balance_id']}", headers=partner.headers)
    ).json()["data"]
    assert (balance["owner_type"], balance["total"]) == ("gift", 2_500)
    reload = await client.post(
        f"/v1/balances/{card['balance_id']}/reload",
        json={"amount": 1, "currency": "EUR"},
        headers=partner.headers,
    )
    assert reload.json()["code"] == "GIFT_NOT_RELOADABLE"


async def test_async_issuance_through_the_worker(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    sessionmaker: async_sessionmaker[AsyncSession],
    app: FastAPI,
    settings: Settings,
) -> None:
    accepted = await client.post(
        "/v1/cards?async=true",
        json={
            "type": "VIRTUAL",
            "product_id": setup.product.id,
            "user_id": setup.holder.user_id,
            "balance_id": setup.holder.balance_id,
        },
        headers=partner.headers,
    )
    assert accepted.status_code == 202
    request = accepted.json()["data"]
    assert (request["status"], request["card_id"]) == ("PENDING", None)
    unapproved = await make_cardholder(app, partner, approve=False)
    doomed = (
        await client.post(
            "/v1/cards?async=true",
            json={
                "type": "VIRTUAL",
                "product_id": setup.product.id,
                "user_id": unapproved.user_id,
                "balance_id": setup.holder.balance_id,
            },
            headers=partner.headers,
        )
    ).json()["data"]
    queue = JobQueue(sessionmaker, JOBS, JobContext(settings=settings, keyring=app.state.keyring))
    while await queue.run_one():
        pass
    done = (await client.get(f"/v1/requests/{request['id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert done["status"] == "COMPLETED"
    card = (await client.get(f"/v1/cards/{done['card_id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert card["status"] == "ACTIVE"
    failed = (await client.get(f"/v1/requests/{doomed['id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert (failed["status"], failed["error_code"], failed["card_id"]) == (
        "FAILED",
        "KYC_NOT_APPROVED",
        None,
    )


async def test_cardholder_views_and_strong_auth_reveal(
    client: AsyncClient,
    app: FastAPI,
    partner: Partner,
    setup: CardProgram,
) -> None:
    mine = (await issue(client, partner, setup)).json()["data"]
    other = await make_cardholder(app, partner)
    theirs = (
        await issue(client, partner, setup, user_id=other.user_id, balance_id=other.balance_id)
    ).json()["data"]

    async def session_for(strong: bool) -> dict[str, str]:
        minted = await client.post(
            f"/v1/users/{setup.holder.user_id}/sessions",
            json={"strong_auth": strong},
            headers=partner.headers,
        )
        return bearer(minted.json()["data"]["access_token"])

    weak, strong = await session_for(False), await session_for(True)
    listed = (await client.get("/v1/me/cards", headers=weak)).json()["data"]
    assert [c["id"] for c in listed] == [mine["id"]]
    assert (await client.get(f"/v1/me/cards/{theirs['id']}", headers=weak)).status_code == 404
    refused = await encrypted_post(client, f"/v1/me/cards/{mine['id']}/reveal", {}, weak)
    assert refused.json()["code"] == "STRONG_AUTH_REQUIRED"
    allowed = opened(await encrypted_post(client, f"/v1/me/cards/{mine['id']}/reveal", {}, strong))
    assert allowed["data"]["pan"].endswith(mine["last4"])
    not_mine = await encrypted_post(client, f"/v1/me/cards/{theirs['id']}/reveal", {}, strong)
    assert not_mine.status_code == 404


async def test_holder_check(client: AsyncClient, partner: Partner, setup: CardProgram) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    path = f"/v1/cards/{card['id']}/verify-holder"
    same = await client.post(
        path,
        json={"first_name": "ZOFIA", "last_name": "kowalska", "phone": "+48 601 234 567"},
        headers=partner.headers,
    )
    assert same.json()["data"] == {
        "first_name": True,
        "last_name": True,
        "phone": True,
        "match": True,
    }
    accents = await client.post(
        path,
        json={"first_name": "Zófia", "last_name": "Kowalská", "phone": "+48601234568"},
        headers=partner.headers,
    )
    assert accents.json()["data"] == {
        "first_name": True,
        "last_name": True,
        "phone": False,
        "match": False,
    }
    for _ in range(3):
        await client.post(
            path, json={"first_name": "x", "last_name": "y", "phone": "z"}, headers=partner.headers
        )
    throttled = await client.post(
        path, json={"first_name": "x", "last_name": "y", "phone": "z"}, headers=partner.headers
    )
    assert (throttled.status_code, throttled.json()["code"]) == (429, "RATE_LIMITED")


async def test_cards_stay_in_their_program(
    client: AsyncClient, partner: Partner, other_partner: Partner, setup: CardProgram
) -> None:
    card = (await issue(client, partner, setup)).json()["data"]
    assert (
        await client.get(f"/v1/cards/{card['id']}", headers=other_partner.headers)
    ).status_code == 404
    assert (await client.get("/v1/cards", headers=other_partner.headers)).json()["data"] == []
    stolen = await encrypted_post(
        client, f"/v1/cards/{card['id']}/reveal", {}, other_partner.headers
    )
    assert stolen.status_code == 404
    listed = await client.get(
        f"/v1/cards?last4={card['last4']}&type=VIRTUAL", headers=partner.headers
    )
    assert card["id"] in [c["id"] for c in listed.json()["data"]]


async def test_no_pan_pin_or_cvv_in_the_database(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
) -> None:
    card = opened(
        await issue_encrypted(
            client, partner, setup, type="PHYSICAL", delivery_address=DELIVERY, pin="739184"
        )
    )["data"]
    # An asynchronous issue waits in a row of its own: that row must not hold the PIN either.
    await issue_encrypted(
        client,
        partner,
        setup,
        "?async=true",
        type="PHYSICAL",
        delivery_address=DELIVERY,
        pin="739184",
    )
    await reveal(client, partner, card["id"])
    # Every value of every table. Bytes are read as raw characters: a PAN stored as bytes would
    # show as its digits, while random ciphertext cannot form long digit runs the way a hex
    # rendering of it can.
    tables = (
        await session.scalars(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
    ).all()
    parts: list[str] = []
    for table in tables:
        rows = await session.execute(text(f'SELECT * FROM "{table}"'))  # noqa: S608 - from pg_tables
        for row in rows:
            parts.extend(v.decode("latin-1") if isinstance(v, bytes) else str(v) for v in row)
    dump = "\n".join(parts)
    runs = re.findall(r"(?<!\d)\d{13,19}(?!\d)", dump)
    assert [r for r in runs if log_luhn(r)] == []
    assert "739184" not in dump
    columns = (
        await session.scalars(
            text("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public'")
        )
    ).all()
    assert not [
        c for c in columns if re.search(r"cvv|cvc|pin$|pin_block|^pan$", c) and c != "cvv_key_index"
    ]


async def test_pan_key_rotation_keeps_every_card_readable(
    client: AsyncClient,
    partner: Partner,
    setup: CardProgram,
    session: AsyncSession,
    app: FastAPI,
) -> None:
    from sqlalchemy import select

    from cardcore.models import Card

    cards = [(await issue(client, partner, setup)).json()["data"] for _ in range(3)]
    before = [await reveal(client, partner, c["id"], ["pan"]) for c in cards]
    vault = app.state.card_services.vault
    version = await vault.add_key(session)
    assert await vault.reencrypt_batch(session, version, limit=2) == 2
    assert await vault.cards_below(session, version) >= 1
    while await vault.reencrypt_batch(session, version):
        pass
    await session.commit()
    versions = set(
        (
            await session.scalars(
                select(Card.pan_key_version).where(Card.program_id == partner.program_id)
            )
        ).all()
    )
    assert versions == {version}
    after = [await reveal(client, partner, c["id"], ["pan"]) for c in cards]
    assert after == before
