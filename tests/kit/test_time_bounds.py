"""A time is held to what can be stored: 0001-01-01 to 9999-12-31 once in UTC. A valid ISO 8601
string outside that (`0001-01-01T00:00:00+14:00` is in year 0 in UTC) is 422 in a filter or a
body, never a 500 from the driver; the extremes themselves work."""

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.balances.helpers import open_balance
from tests.factories import Partner, bearer, make_admin

TOO_EARLY = "0001-01-01T00:00:00+14:00"
TOO_LATE = "9999-12-31T23:59:59-14:00"
EARLIEST = "0001-01-01T00:00:00Z"
LATEST = "9999-12-31T23:59:59.999999Z"


@pytest.fixture
async def token(app: FastAPI, partner: Partner) -> str:
    return (await make_admin(app, partner, "admin")).token


async def _filters(
    client: AsyncClient, partner: Partner, token: str, moment: str
) -> list[tuple[str, int, str]]:
    balance = await open_balance(client, partner)
    calls = [
        ("/v1/transactions", {"created_from": moment}, partner.headers),
        ("/v1/transactions", {"created_to": moment}, partner.headers),
        (f"/v1/balances/{balance['id']}/ledger", {"created_from": moment}, partner.headers),
        ("/v1/admin/audit-log", {"created_to": moment}, bearer(token)),
        ("/v1/admin/fee-revenue", {"from": moment, "to": LATEST}, bearer(token)),
    ]
    answers = []
    for path, params, headers in calls:
        response = await client.get(path, params=params, headers=headers)
        answers.append((path, response.status_code, response.json().get("code", "")))
    return answers


@pytest.mark.parametrize("moment", [TOO_EARLY, TOO_LATE])
async def test_a_time_out_of_range_is_422(
    client: AsyncClient, partner: Partner, token: str, moment: str
) -> None:
    for path, status, code in await _filters(client, partner, token, moment):
        assert (status, code) == (422, "VALIDATION_ERROR"), path


@pytest.mark.parametrize("moment", [EARLIEST, LATEST])
async def test_the_extremes_are_fine(
    client: AsyncClient, partner: Partner, token: str, moment: str
) -> None:
    for path, status, _ in await _filters(client, partner, token, moment):
        if path == "/v1/admin/fee-revenue" and moment == LATEST:
            assert status == 422, "from must be before to"
            continue
        assert status == 200, path


async def test_a_body_time_out_of_range_is_422(client: AsyncClient, token: str) -> None:
    response = await client.post(
        "/v1/admin/fee-schedules",
        json={"fees": [], "effective_from": TOO_LATE},
        headers=bearer(token),
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "effective_from"
