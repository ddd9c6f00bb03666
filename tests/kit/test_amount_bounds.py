"""One bound on every amount: no number a caller sends can overflow what PostgreSQL stores.

Amounts, limits, thresholds, prices and amount filters are at most MAX_AMOUNT (twelve digits, as
ISO 8583 carries them), declared in /openapi.json; every other integer a request takes has a
maximum too. A total that would still overflow (an account's running credits) is 422
VALUE_OUT_OF_RANGE, and nothing moves.
"""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.money import MAX_AMOUNT
from cardcore.models import Balance, LedgerAccount
from tests.balances.helpers import open_balance, reload
from tests.factories import PRODUCT, Partner, World, fund_partner

BIGINT_MAX = 2**63 - 1


def _integers(node: Any, spec: dict[str, Any], path: str, seen: set[str]) -> list[str]:
    """Every integer schema under `node` that has no maximum, or one above MAX_AMOUNT."""
    found: list[str] = []
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                target = spec["components"]["schemas"][name]
                found += _integers(target, spec, f"{path}<{name}>", seen | {name})
            return found
        if node.get("type") == "integer" and "enum" not in node and "const" not in node:
            maximum = node.get("maximum", node.get("exclusiveMaximum"))
            if maximum is None or maximum > MAX_AMOUNT:
                found.append(path)
        for key, value in node.items():
            found += _integers(value, spec, f"{path}.{key}", seen)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _integers(value, spec, f"{path}[{index}]", seen)
    return found


def test_every_integer_a_request_takes_is_bounded(app: FastAPI) -> None:
    spec = app.openapi()
    unbounded = []
    for route, operations in spec["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {route}"
            for parameter in operation.get("parameters", []):
                unbounded += _integers(
                    parameter.get("schema", {}), spec, f"{where} ?{parameter['name']}", set()
                )
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                unbounded += _integers(media.get("schema", {}), spec, f"{where} body", set())
    assert unbounded == []


def test_the_amount_bound_is_documented_in_the_schema(app: FastAPI) -> None:
    spec = app.openapi()
    amount = spec["components"]["schemas"]["Amount"]["properties"]["amount"]
    assert amount["maximum"] == MAX_AMOUNT == 999_999_999_999
    filters = {
        p["name"]: p["schema"]
        for p in spec["paths"]["/v1/transactions"]["get"]["parameters"]
        if p["name"] in ("min_amount", "max_amount")
    }
    assert {name: s["anyOf"][0]["maximum"] for name, s in filters.items()} == {
        "min_amount": MAX_AMOUNT,
        "max_amount": MAX_AMOUNT,
    }


@pytest.mark.parametrize("amount", [MAX_AMOUNT + 1, BIGINT_MAX, BIGINT_MAX + 1, 10**30])
async def test_amounts_above_the_bound_are_422(
    client: AsyncClient, partner: Partner, session: AsyncSession, amount: int
) -> None:
    await fund_partner(session, partner, 1_000_000)
    balance = await open_balance(client, partner)
    other = await open_balance(client, partner)
    headers = partner.headers
    answers = [
        await reload(client, partner, balance["id"], amount),
        await client.post(
            "/v1/transfers",
            json={
                "from_balance_id": balance["id"],
                "to_balance_id": other["id"],
                "amount": amount,
                "currency": "EUR",
            },
            headers=headers,
        ),
        await client.get("/v1/transactions", params={"min_amount": amount}, headers=headers),
        await client.get("/v1/transactions", params={"max_amount": amount}, headers=headers),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "VALIDATION_ERROR"
    # Nothing moved.
    found = await client.get(f"/v1/balances/{balance['id']}", headers=headers)
    assert found.json()["data"]["total"] == 0


async def test_the_bound_itself_is_accepted(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    await fund_partner(session, partner, MAX_AMOUNT)
    balance = await open_balance(client, partner)
    reloaded = await reload(client, partner, balance["id"], MAX_AMOUNT)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["data"]["balance"]["total"] == MAX_AMOUNT
    listed = await client.get(
        "/v1/transactions",
        params={"min_amount": 0, "max_amount": MAX_AMOUNT},
        headers=partner.headers,
    )
    assert listed.status_code == 200, listed.text


async def test_a_total_that_would_overflow_is_422_and_moves_nothing(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    """The schemas bound each amount; the ledger's running totals still have an end. Reaching
    it is the caller's 422, not our 500."""
    await fund_partner(session, partner, MAX_AMOUNT)
    balance = await open_balance(client, partner)
    account_id = await session.scalar(
        select(Balance.ledger_account_id).where(Balance.id == balance["id"])
    )
    # An account that has taken in nearly all a BIGINT holds, over its (long) life.
    await session.execute(
        update(LedgerAccount)
        .where(LedgerAccount.id == account_id)
        .values(credits_posted=BIGINT_MAX - 10, debits_posted=BIGINT_MAX - 10)
    )
    await session.commit()
    refused = await reload(client, partner, balance["id"], 11)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "VALUE_OUT_OF_RANGE"
    assert str(BIGINT_MAX) not in refused.text
    accepted = await reload(client, partner, balance["id"], 10)
    assert accepted.status_code == 200, accepted.text


async def test_limits_above_the_bound_are_422_wherever_they_are_set(
    client: AsyncClient,
    partner: Partner,
    world: World,
) -> None:
    too_high = {"limits": [{"kind": "amount", "period": "day", "value": MAX_AMOUNT + 1}]}
    admin = world.admin.headers
    answers = [
        await client.post(
            "/v1/admin/products",
            json={**PRODUCT, "name": "Capped", "default_controls": too_high},
            headers=admin,
        ),
        await client.put(
            f"/v1/cards/{world.card.id}/controls", json=too_high, headers=partner.headers
        ),
        await client.patch(
            "/v1/admin/program-settings",
            json={"control_maxima": too_high["limits"]},
            headers=admin,
        ),
    ]
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "VALIDATION_ERROR"
