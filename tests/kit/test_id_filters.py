"""A malformed id in a list filter matches nothing, exactly as an unknown id does: 200 and an
empty page, never a 500 (`GET /v1/fees?balance_id=bal_0000uq9y…` was one: the `u` is outside
the id alphabet but inside the old pattern)."""

from httpx import AsyncClient

from cardcore.models.ids import new_id
from tests.authorizations.network import authorize
from tests.factories import Partner, World


def malformed(prefix: str) -> list[str]:
    body = new_id(prefix).partition("_")[2]
    return [
        f"{prefix}_0000uq9y{body[8:]}",  # u is not Crockford base32
        f"{prefix}_8{body[1:]}",  # 26 digits from 8 up hold more than 128 bits
        f"{prefix}_{body[:-1]}",  # too short
        f"{prefix}_{body}0",  # too long
        f"{prefix}_{body.upper()}",  # upper case
        f"{prefix}{body}",  # no separator
        new_id("evt"),  # another type's id
        "",
        "x" * 64,
    ]


FILTERS = [  # (path, parameter, the id type it takes)
    ("/v1/fees", "balance_id", "bal"),
    ("/v1/fees", "card_id", "card"),
    ("/v1/fees", "transaction_id", "txn"),
    ("/v1/fees", "money_transfer_id", "trf"),
    ("/v1/fee-schedules", "product_id", "prd"),
    ("/v1/transactions", "card_id", "card"),
    ("/v1/transactions", "balance_id", "bal"),
    ("/v1/transactions", "user_id", "usr"),
    ("/v1/cards", "user_id", "usr"),
    ("/v1/cards", "balance_id", "bal"),
]
ADMIN_FILTERS = [
    ("/v1/admin/fees", "balance_id", "bal"),
    ("/v1/admin/fees", "card_id", "card"),
    ("/v1/admin/fee-schedules", "product_id", "prd"),
]


async def test_a_malformed_id_filter_matches_nothing(
    client: AsyncClient,
    partner: Partner,
    world: World,
) -> None:
    # Something for each list to find, so "nothing" means the filter matched nothing.
    await authorize(client, world, amount=100)
    admin = world.admin.headers
    for filters, headers in ((FILTERS, partner.headers), (ADMIN_FILTERS, admin)):
        for path, name, prefix in filters:
            for value in malformed(prefix):
                response = await client.get(path, params={name: value}, headers=headers)
                assert response.status_code == 200, (path, name, value, response.text)
                assert response.json()["data"] == [], (path, name, value)


async def test_a_well_formed_id_still_filters(
    client: AsyncClient,
    partner: Partner,
    world: World,
) -> None:
    approved = await authorize(client, world, amount=100)
    for path, name, value in (
        ("/v1/transactions", "card_id", world.card.id),
        ("/v1/transactions", "balance_id", world.card.balance_id),
        ("/v1/cards", "balance_id", world.card.balance_id),
    ):
        response = await client.get(path, params={name: value}, headers=partner.headers)
        assert response.status_code == 200, response.text
        assert len(response.json()["data"]) == 1, (path, name)
    found = await client.get(
        "/v1/transactions", params={"card_id": world.card.id}, headers=partner.headers
    )
    assert found.json()["data"][0]["id"] == approved["authorization_id"]
