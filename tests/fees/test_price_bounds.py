"""A fee price is an amount like any other: at most MAX_AMOUNT, and a price at that bound never
breaks the authorizations it prices (a price of 2**63 - 1 once made every ECOM authorization on
its product a 500)."""

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances import service as balances
from cardcore.kit.money import MAX_AMOUNT
from cardcore.models import PartnerBalance
from tests.authorizations.network import authorize, available
from tests.balances.helpers import reload
from tests.factories import Partner, World
from tests.fees.helpers import fees_of, set_schedule

HIGHEST = {"EUR": {"fixed": MAX_AMOUNT, "percent_bps": 10_000}}
ECOM = {"channel": "ECOM", "entry_mode": "ECOM"}


async def test_a_price_above_the_bound_is_refused(client: AsyncClient, world: World) -> None:
    for fixed in (MAX_AMOUNT + 1, 2**63 - 1, 2**64):
        refused = await client.post(
            "/v1/admin/fee-schedules",
            json={
                "fees": [
                    {"type": "TRANSACTION", "channel": "ECOM", "prices": {"EUR": {"fixed": fixed}}}
                ]
            },
            headers=world.admin.headers,
        )
        assert refused.status_code == 422, refused.text
        assert refused.json()["code"] == "VALIDATION_ERROR"


async def test_the_highest_price_declines_instead_of_failing(
    client: AsyncClient,
    partner: Partner,
    world: World,
    session: AsyncSession,
) -> None:
    await set_schedule(
        client, world.admin.token, [{"type": "TRANSACTION", "channel": "ECOM", "prices": HIGHEST}]
    )
    before = await available(client, partner, world)
    # Twice: the first answer must not leave anything behind that breaks the next.
    for amount in (1_000, 1_000):
        answer = await authorize(client, world, amount=amount, **ECOM)
        assert (answer["approved"], answer["response_code"]) == (False, "51")
    assert await available(client, partner, world) == before

    # The largest amount, on a balance that holds it: the fee (the amount again, plus the fixed
    # part) takes the hold to three times the bound, still declined and still no 500.
    credit = await session.scalar(
        select(PartnerBalance).where(PartnerBalance.program_id == partner.program_id)
    )
    await balances.reload_partner_balance(session, credit, amount=MAX_AMOUNT, reference="wire")
    await session.commit()
    topped = await reload(client, partner, world.card.balance_id, MAX_AMOUNT - before)
    assert topped.status_code == 200, topped.text
    answer = await authorize(client, world, amount=MAX_AMOUNT, **ECOM)
    assert (answer["approved"], answer["response_code"]) == (False, "51")
    assert await available(client, partner, world) == MAX_AMOUNT

    # Other channels are priced by other rules and go on as before.
    approved = await authorize(client, world, amount=1_000)
    assert approved["approved"], approved
    assert await fees_of(client, partner.headers, card_id=world.card.id) == []
