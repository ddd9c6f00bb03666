"""An error message never repeats what was sent: the input may be a card number. A PAN sent as an
IBAN, a currency, an email, an MCC or a JSON key comes back nowhere in the answer.

(`POST /v1/iban/validate {"iban": "4111111111111111"}` answered "Invalid characters in IBAN
4111111111111111"; currency codes were quoted too.)"""

import re

import pytest
from httpx import AsyncClient, Response

from cardcore.kit.logging import luhn_valid
from tests.balances.helpers import approved_user
from tests.customers.helpers import create_user
from tests.factories import ADDRESS, PERSONAL, Partner, World

PAN = "4111111111111111"
SPACED = "4111 1111 1111 1111"


def assert_not_echoed(response: Response, *sent: str) -> None:
    assert 400 <= response.status_code < 500, response.text
    for value in sent:
        assert value not in response.text, response.text
    runs = re.findall(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)", response.text)
    assert [r for r in runs if luhn_valid(re.sub(r"[ -]", "", r))] == [], response.text


@pytest.mark.parametrize(
    "iban",
    [
        PAN,
        SPACED,
        "DE89370400440532013001",  # wrong check digits
        "DE8937040044053201300",  # wrong length
        "XX89370400440532013000",  # no such country
        "GB82WEST1234569876543Z",  # letters where the country has digits
        "DE89 3704 0044 0532 0130 00 4111 1111 1111 1111",
    ],
)
async def test_iban_refusals_do_not_quote_the_iban(
    client: AsyncClient, partner: Partner, iban: str
) -> None:
    response = await client.post("/v1/iban/validate", json={"iban": iban}, headers=partner.headers)
    assert response.json()["code"] == "INVALID_IBAN"
    assert response.json()["errors"][0]["message"]
    assert_not_echoed(response, iban, iban.replace(" ", ""))


async def test_an_iban_payee_refusal_does_not_quote_it(
    client: AsyncClient, partner: Partner
) -> None:
    user_id = await approved_user(client, partner)
    response = await client.post(
        "/v1/payment-contacts",
        json={"user_id": user_id, "iban": PAN, "holder_name": "Ana"},
        headers=partner.headers,
    )
    assert_not_echoed(response, PAN)


async def test_codes_are_not_quoted(client: AsyncClient, partner: Partner) -> None:
    user_id = await approved_user(client, partner)
    for currency in ("ZZZ", "XAU", "411"):
        response = await client.post(
            "/v1/balances", json={"user_id": user_id, "currency": currency}, headers=partner.headers
        )
        assert_not_echoed(response, repr(currency), currency)

    user = await create_user(client, partner)
    for body in (
        {**PERSONAL, "nationality": "QQ"},
        {**PERSONAL, "national_id_number": PAN, "date_of_birth": PAN},
    ):
        response = await client.put(
            f"/v1/users/{user['id']}/kyc/personal", json=body, headers=partner.headers
        )
        assert_not_echoed(response, "QQ", PAN)
    for address in ({**ADDRESS, "country": "QQ"}, {**ADDRESS, "state": "4111111111"}):
        response = await client.post(
            f"/v1/users/{user['id']}/kyc/addresses", json=address, headers=partner.headers
        )
        assert_not_echoed(response, "QQ", "4111111111")


async def test_emails_are_not_quoted(client: AsyncClient, partner: Partner) -> None:
    for email in (PAN, f"{PAN}@", f"a,{PAN}@example.com", f"{PAN}@{PAN}"):
        response = await client.post("/v1/users", json={"email": email}, headers=partner.headers)
        assert_not_echoed(response, email)
        listed = await client.get("/v1/users", params={"email": email}, headers=partner.headers)
        assert_not_echoed(listed, email)


async def test_control_codes_are_not_quoted(
    client: AsyncClient,
    partner: Partner,
    world: World,
) -> None:
    path = f"/v1/cards/{world.card.id}/controls"
    for controls in (
        {"mcc": {"mode": "block", "codes": ["5411", PAN]}},
        {"countries": {"mode": "allow", "codes": ["PL", PAN]}},
    ):
        response = await client.put(path, json=controls, headers=partner.headers)
        assert_not_echoed(response, PAN)
        assert "position" in response.text  # where the bad code is, instead of what it is


async def test_a_card_number_as_a_key_is_masked(client: AsyncClient, partner: Partner) -> None:
    """Pydantic names an unexpected key by the key; a card number there comes back masked."""
    response = await client.post("/v1/users", json={PAN: "x"}, headers=partner.headers)
    assert response.status_code == 422
    assert_not_echoed(response, PAN)
    assert response.json()["errors"][0]["field"] == "411111******1111"
