from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.cards.helpers import issue, setup_cards
from tests.conftest import Partner
from tests.fees.helpers import eur, fees_of, set_schedule
from tests.money.helpers import reload


async def test_smoke(client: AsyncClient, session: AsyncSession, partner: Partner) -> None:
    setup = await setup_cards(client, session, partner)
    await reload(client, partner, setup["balance_id"], 10_000)
    s = await set_schedule(client, setup["token"], [{"type": "CARD_ISSUANCE", "prices": eur(500)}])
    assert s["version"] == 1
    card = (await issue(client, partner, setup)).json()["data"]
    fees = await fees_of(client, partner.headers, card_id=card["id"])
    assert [(f["type"], f["status"], f["amount"]) for f in fees] == [
        ("CARD_ISSUANCE", "CHARGED", 500)
    ]
    bal = (await client.get(f"/v1/balances/{setup['balance_id']}", headers=partner.headers)).json()[
        "data"
    ]
    assert bal["available"] == 9_500
