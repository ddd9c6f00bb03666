"""Fee schedules: who may write and read them, what a version must be, how versions number and
take effect, and how a product's rules override the program's."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees import schedules
from cardcore.models.ids import new_id
from tests.balances.helpers import reload
from tests.cards.helpers import issue
from tests.factories import DELIVERY, Partner, bearer, make_admin, make_card_program, make_product
from tests.fees.helpers import eur, fees_of, set_schedule


async def _post(client: AsyncClient, token: str, body: dict[str, Any]):  # type: ignore[no-untyped-def]
    return await client.post("/v1/admin/fee-schedules", json=body, headers=bearer(token))


async def _price(
    session: AsyncSession,
    partner: Partner,
    type_: str,
    *,
    product_id: str | None = None,
    at: datetime | None = None,
    **narrowing: str,
) -> tuple[int, str] | None:
    priced = await schedules.price(
        session,
        program_id=partner.program_id,
        product_id=product_id,
        type_=type_,
        currency="EUR",
        at=at,
        **narrowing,
    )
    return None if priced is None else (priced.amount, priced.schedule_id)


async def test_only_admins_write_schedules_and_admins_and_managers_read_them(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    manager = (await make_admin(app, partner, "manager")).token
    employee = (await make_admin(app, partner, "employee")).token
    body = {"fees": [{"type": "CARD_ISSUANCE", "prices": eur(500)}]}

    for token in (manager, employee):
        refused = await _post(client, token, body)
        assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
    assert (
        await client.post("/v1/admin/fee-schedules", json=body, headers=partner.headers)
    ).status_code in (401, 403)
    assert (await client.post("/v1/admin/fee-schedules", json=body)).status_code == 401

    made = await _post(client, setup.admin.token, body)
    assert made.status_code == 201, made.text
    schedule = made.json()["data"]
    assert (schedule["version"], schedule["product_id"]) == (1, None)
    (rule,) = schedule["fees"]
    assert (rule["type"], rule["form_factor"], rule["prices"]["EUR"]["fixed"]) == (
        "CARD_ISSUANCE",
        None,
        500,
    )

    for token in (setup.admin.token, manager):
        listed = await client.get("/v1/admin/fee-schedules", headers=bearer(token))
        assert [s["id"] for s in listed.json()["data"]] == [schedule["id"]]
        one = await client.get(f"/v1/admin/fee-schedules/{schedule['id']}", headers=bearer(token))
        assert one.json()["data"] == schedule
    for path in ("/v1/admin/fee-schedules", f"/v1/admin/fee-schedules/{schedule['id']}"):
        assert (await client.get(path, headers=bearer(employee))).status_code == 403
    # The partner reads the program's schedules on its own route, not on the ops one.
    shown = await client.get("/v1/fee-schedules", headers=partner.headers)
    assert [s["id"] for s in shown.json()["data"]] == [schedule["id"]]
    assert (await client.get("/v1/admin/fee-schedules", headers=partner.headers)).status_code in (
        401,
        403,
    )


def _rule(type_: str, amount: int = 100, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "prices": eur(amount), **fields}


async def test_invalid_schedules_are_refused_and_nothing_is_written(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    partner: Partner,
    other_partner: Partner,
) -> None:
    setup = await make_card_program(app, partner)
    product_id = setup.product.id
    foreign_product = (await make_product(app, other_partner)).id
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    future_naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()

    # (what is wrong, body, the field error's code when the service names one)
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        (
            "percent on a fixed-price type",
            {
                "fees": [
                    {"type": "CARD_ISSUANCE", "prices": {"EUR": {"fixed": 1, "percent_bps": 5}}}
                ]
            },
            None,
        ),
        (
            "minimum on a fixed-price type",
            {"fees": [{"type": "BALANCE_CREATION", "prices": {"EUR": {"fixed": 1, "minimum": 1}}}]},
            None,
        ),
        ("CARD_PERIODIC without period", {"fees": [_rule("CARD_PERIODIC")]}, None),
        ("period on another type", {"fees": [_rule("CARD_ISSUANCE", period="MONTHLY")]}, None),
        ("TRANSACTION without channel", {"fees": [_rule("TRANSACTION")]}, None),
        ("channel on another type", {"fees": [_rule("FX", channel="POS")]}, None),
        ("form factor on another type", {"fees": [_rule("FX", form_factor="VIRTUAL")]}, None),
        (
            "two rules of one identity",
            {"fees": [_rule("CARD_ISSUANCE", 100), _rule("CARD_ISSUANCE", 200)]},
            None,
        ),
        (
            "two rules of one identity with a form factor",
            {
                "fees": [
                    _rule("CARD_ISSUANCE", 100, form_factor="PHYSICAL"),
                    _rule("CARD_ISSUANCE", 200, form_factor="PHYSICAL"),
                ]
            },
            None,
        ),
        (
            "FIRST_CARDS_FREE on a periodic fee",
            {
                "fees": [
                    _rule(
                        "CARD_PERIODIC",
                        period="MONTHLY",
                        waivers=[{"rule": "FIRST_CARDS_FREE", "count": 1}],
                    )
                ]
            },
            None,
        ),
        (
            "SPEND_AT_LEAST on an issuance fee",
            {"fees": [_rule("CARD_ISSUANCE", waivers=[{"rule": "SPEND_AT_LEAST", "amount": 1}])]},
            None,
        ),
        (
            "FIRST_MONTH_FREE on a replacement fee",
            {"fees": [_rule("CARD_REPLACEMENT", waivers=[{"rule": "FIRST_MONTH_FREE"}])]},
            None,
        ),
        (
            "minimum above maximum",
            {
                "fees": [
                    {
                        "type": "TRANSACTION",
                        "channel": "POS",
                        "prices": {"EUR": {"percent_bps": 100, "minimum": 50, "maximum": 10}},
                    }
                ]
            },
            None,
        ),
        (
            "above 100 %",
            {"fees": [{"type": "FX", "prices": {"EUR": {"percent_bps": 10_001}}}]},
            None,
        ),
        ("a negative amount", {"fees": [_rule("CARD_ISSUANCE", -1)]}, None),
        ("no price at all", {"fees": [{"type": "CARD_ISSUANCE", "prices": {}}]}, None),
        ("not a currency", {"fees": [{"type": "CARD_ISSUANCE", "prices": {"EURO": {}}}]}, None),
        (
            "a currency the program does not hold",
            {"fees": [{"type": "CARD_ISSUANCE", "prices": {"USD": {"fixed": 100}}}]},
            "CURRENCY_NOT_ALLOWED",
        ),
        (
            "effective in the past",
            {"fees": [_rule("CARD_ISSUANCE")], "effective_from": past},
            "IN_THE_PAST",
        ),
        (
            "effective_from without a time zone",
            {"fees": [_rule("CARD_ISSUANCE")], "effective_from": future_naive},
            "NO_TIME_ZONE",
        ),
        (
            "BALANCE_CREATION in a product's schedule",
            {"product_id": product_id, "fees": [_rule("BALANCE_CREATION")]},
            None,
        ),
        (
            "TRANSFER in a product's schedule",
            {"product_id": product_id, "fees": [_rule("TRANSFER")]},
            None,
        ),
        (
            "a product that does not exist",
            {"product_id": new_id("prd"), "fees": [_rule("CARD_ISSUANCE")]},
            "NOT_FOUND",
        ),
        (
            "another program's product",
            {"product_id": foreign_product, "fees": [_rule("CARD_ISSUANCE")]},
            "NOT_FOUND",
        ),
        ("a malformed product id", {"product_id": "prd_nope", "fees": []}, "NOT_FOUND"),
        ("an unknown field", {"fees": [], "owner": "me"}, None),
        ("an unknown fee type", {"fees": [_rule("MEMBERSHIP")]}, None),
    ]
    for what, body, field_code in cases:
        response = await _post(client, setup.admin.token, body)
        assert response.status_code == 422, (what, response.status_code, response.text)
        error = response.json()
        assert error["code"] == "VALIDATION_ERROR", (what, error)
        if field_code is not None:
            assert [e["code"] for e in error["errors"]] == [field_code], (what, error)

    listed = await client.get("/v1/admin/fee-schedules", headers=setup.admin.headers)
    assert listed.json()["data"] == []
    # What the cases got wrong, done right, is accepted: the checks are not refusing everything.
    assert (
        await _post(
            client,
            setup.admin.token,
            {
                "fees": [
                    _rule("CARD_ISSUANCE", 100),
                    _rule("CARD_ISSUANCE", 200, form_factor="PHYSICAL"),
                    _rule(
                        "CARD_PERIODIC",
                        period="MONTHLY",
                        waivers=[{"rule": "SPEND_AT_LEAST", "amount": 1}],
                    ),
                    {
                        "type": "TRANSACTION",
                        "channel": "POS",
                        "prices": {"EUR": {"percent_bps": 100, "minimum": 10, "maximum": 10}},
                    },
                    _rule("BALANCE_CREATION"),
                ],
                "effective_from": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
            },
        )
    ).status_code == 201


async def test_versions_number_per_scope_and_stay_in_their_program(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    partner: Partner,
    other_partner: Partner,
) -> None:
    setup = await make_card_program(app, partner)
    token = setup.admin.token
    manager = (await make_admin(app, partner, "manager")).token
    gold = await make_product(app, partner, name="Gold")
    classic = setup.product.id

    program_versions = [
        await set_schedule(client, token, [_rule("CARD_ISSUANCE", n)]) for n in (100, 200, 300)
    ]
    classic_versions = [
        await set_schedule(client, token, [_rule("CARD_ISSUANCE", n)], product_id=classic)
        for n in (10, 20)
    ]
    gold_version = await set_schedule(client, token, [], product_id=gold.id)
    assert [s["version"] for s in program_versions] == [1, 2, 3]
    assert [(s["version"], s["product_id"]) for s in classic_versions] == [
        (1, classic),
        (2, classic),
    ]
    assert (gold_version["version"], gold_version["product_id"], gold_version["fees"]) == (
        1,
        gold.id,
        [],
    )
    fourth = await set_schedule(client, token, [])
    assert fourth["version"] == 4

    everything = [*program_versions, *classic_versions, gold_version, fourth]
    listed = await client.get(
        "/v1/admin/fee-schedules", params={"limit": 100}, headers=bearer(manager)
    )
    assert [s["id"] for s in listed.json()["data"]] == [s["id"] for s in reversed(everything)]
    of_classic = await client.get(
        "/v1/admin/fee-schedules", params={"product_id": classic}, headers=bearer(manager)
    )
    assert [s["version"] for s in of_classic.json()["data"]] == [2, 1]
    assert {s["product_id"] for s in of_classic.json()["data"]} == {classic}
    paged = await client.get("/v1/admin/fee-schedules", params={"limit": 2}, headers=bearer(token))
    assert paged.json()["meta"]["has_more"] is True
    assert len(paged.json()["data"]) == 2
    # A malformed id filters like an unknown one: nothing matches (as in every list's filters).
    bad_filter = await client.get(
        "/v1/admin/fee-schedules", params={"product_id": "gold"}, headers=bearer(token)
    )
    assert (bad_filter.status_code, bad_filter.json()["data"]) == (200, [])

    partner_view = await client.get(
        "/v1/fee-schedules", params={"product_id": gold.id}, headers=partner.headers
    )
    assert [s["id"] for s in partner_view.json()["data"]] == [gold_version["id"]]

    # Another program sees none of it, and an id of ours is "not found" to it.
    other_token = (await make_admin(app, other_partner)).token
    for path in (
        f"/v1/admin/fee-schedules/{program_versions[0]['id']}",
        f"/v1/admin/fee-schedules/{new_id('fsc')}",
        "/v1/admin/fee-schedules/fsc_nope",
    ):
        missing = await client.get(path, headers=bearer(other_token))
        assert (missing.status_code, missing.json()["code"]) == (404, "NOT_FOUND"), path
    assert (await client.get("/v1/admin/fee-schedules", headers=bearer(other_token))).json()[
        "data"
    ] == []
    assert (await client.get("/v1/fee-schedules", headers=other_partner.headers)).json()[
        "data"
    ] == []
    # Its own versions start at 1: the numbering is per program.
    theirs = await set_schedule(client, other_token, [_rule("CARD_ISSUANCE", 1)])
    assert theirs["version"] == 1


async def test_a_version_applies_from_its_effective_time_and_never_rewrites_charged_fees(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await reload(client, partner, setup.holder.balance_id, 10_000)
    token, now = setup.admin.token, datetime.now(UTC)
    tomorrow = now + timedelta(days=1)

    first = await set_schedule(client, token, [_rule("CARD_ISSUANCE", 500)])
    later = await set_schedule(
        client, token, [_rule("CARD_ISSUANCE", 800)], effective_from=tomorrow.isoformat()
    )
    assert datetime.fromisoformat(later["effective_from"]) == tomorrow
    assert datetime.fromisoformat(first["effective_from"]) <= datetime.now(UTC)

    # Until tomorrow the first version prices; from then on, the second.
    assert await _price(session, partner, "CARD_ISSUANCE", form_factor="VIRTUAL") == (
        500,
        first["id"],
    )
    assert await _price(session, partner, "CARD_ISSUANCE", at=tomorrow - timedelta(seconds=1)) == (
        500,
        first["id"],
    )
    assert await _price(session, partner, "CARD_ISSUANCE", at=tomorrow) == (800, later["id"])
    # Before any version there was nothing to charge.
    assert await _price(session, partner, "CARD_ISSUANCE", at=now - timedelta(days=1)) is None

    card = (await issue(client, partner, setup)).json()["data"]
    (charged,) = await fees_of(client, partner.headers, card_id=card["id"])
    assert (charged["status"], charged["amount"], charged["schedule_id"]) == (
        "CHARGED",
        500,
        first["id"],
    )

    # A new version now: new cards pay its price, the fee already charged keeps its own.
    now_version = await set_schedule(client, token, [_rule("CARD_ISSUANCE", 900)])
    assert now_version["version"] == 3
    # Versions take turns by effective time, not by number: the one made for tomorrow still
    # takes over tomorrow from the one made for now.
    assert await _price(session, partner, "CARD_ISSUANCE") == (900, now_version["id"])
    assert await _price(session, partner, "CARD_ISSUANCE", at=tomorrow) == (800, later["id"])
    second = (await issue(client, partner, setup)).json()["data"]
    (second_fee,) = await fees_of(client, partner.headers, card_id=second["id"])
    assert (second_fee["amount"], second_fee["schedule_id"]) == (900, now_version["id"])
    again = (await client.get(f"/v1/fees/{charged['id']}", headers=partner.headers)).json()["data"]
    assert (again["amount"], again["schedule_id"], again["status"]) == (500, first["id"], "CHARGED")
    balance = await client.get(f"/v1/balances/{setup.holder.balance_id}", headers=partner.headers)
    assert balance.json()["data"]["total"] == 10_000 - 500 - 900

    # An empty version charges nothing from its time on.
    await set_schedule(client, token, [])
    free = (await issue(client, partner, setup)).json()["data"]
    assert await fees_of(client, partner.headers, card_id=free["id"]) == []


async def test_a_products_rules_override_the_programs_and_a_form_factor_beats_every_card(
    client: AsyncClient, app: FastAPI, session: AsyncSession, partner: Partner
) -> None:
    setup = await make_card_program(app, partner)
    await reload(client, partner, setup.holder.balance_id, 10_000)
    token = setup.admin.token
    classic = setup.product.id
    gold = (await make_product(app, partner, name="Gold")).id

    program = await set_schedule(
        client,
        token,
        [
            _rule("CARD_ISSUANCE", 500),
            _rule("CARD_ISSUANCE", 1_500, form_factor="PHYSICAL"),
            _rule("CARD_REPLACEMENT", 300),
        ],
    )
    product = await set_schedule(
        client,
        token,
        [_rule("CARD_ISSUANCE", 200), _rule("CARD_REPLACEMENT", 0, form_factor="VIRTUAL")],
        product_id=classic,
    )

    async def priced(type_: str, product_id: str, form_factor: str) -> tuple[int, str] | None:
        return await _price(session, partner, type_, product_id=product_id, form_factor=form_factor)

    # Classic's any-card rule replaces the program's any-card rule...
    assert await priced("CARD_ISSUANCE", classic, "VIRTUAL") == (200, product["id"])
    # ...but the program's own rule for plastic is narrower, and wins for a physical card.
    assert await priced("CARD_ISSUANCE", classic, "PHYSICAL") == (1_500, program["id"])
    # What Classic does not override is the program's.
    assert await priced("CARD_REPLACEMENT", classic, "PHYSICAL") == (300, program["id"])
    # Classic makes a virtual replacement free: priced at 0, there is nothing to charge.
    assert await priced("CARD_REPLACEMENT", classic, "VIRTUAL") is None
    # Gold has no schedule of its own.
    assert await priced("CARD_ISSUANCE", gold, "VIRTUAL") == (500, program["id"])
    assert await priced("CARD_ISSUANCE", gold, "PHYSICAL") == (1_500, program["id"])

    # Issuing cards agrees.
    virtual = (await issue(client, partner, setup)).json()["data"]
    physical = (
        await issue(client, partner, setup, type="PHYSICAL", delivery_address=DELIVERY)
    ).json()["data"]
    golden = (await issue(client, partner, setup, product_id=gold)).json()["data"]
    charged = {
        card["id"]: [
            (f["type"], f["amount"], f["schedule_id"])
            for f in await fees_of(client, partner.headers, card_id=card["id"])
        ]
        for card in (virtual, physical, golden)
    }
    assert charged == {
        virtual["id"]: [("CARD_ISSUANCE", 200, product["id"])],
        physical["id"]: [("CARD_ISSUANCE", 1_500, program["id"])],
        golden["id"]: [("CARD_ISSUANCE", 500, program["id"])],
    }

    # A later program version does not drop the product's override; without its plastic rule,
    # Classic's any-card rule prices a physical card too.
    newer = await set_schedule(client, token, [_rule("CARD_ISSUANCE", 700)])
    assert await priced("CARD_ISSUANCE", classic, "VIRTUAL") == (200, product["id"])
    assert await priced("CARD_ISSUANCE", classic, "PHYSICAL") == (200, product["id"])
    assert await priced("CARD_ISSUANCE", gold, "PHYSICAL") == (700, newer["id"])
    assert await priced("CARD_REPLACEMENT", gold, "PHYSICAL") is None
