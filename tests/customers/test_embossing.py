import pytest
from httpx import AsyncClient

from cardcore.customers.embossing import MAX_LENGTH, embossable, embossing_names
from tests.customers.helpers import create_user
from tests.factories import PERSONAL, Partner


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Zażółć Gęślą", "ZAZOLC GESLA"),
        ("Müller-Lüdenscheidt", "MULLER-LUDENSCHEIDT"),
        ("O'Brien", "O'BRIEN"),
        ("Владимир", "VLADIMIR"),
        ("Ólafur", "OLAFUR"),
        ("Nguyễn", "NGUYEN"),
        ("李小龍", "LIXIAOLONG"),
        ("Jean-Luc (JL) #1", "JEAN-LUC JL"),
    ],
)
def test_names_become_embossable(name: str, expected: str) -> None:
    assert embossable(name) == expected


def test_variants_fit_the_card() -> None:
    names = embossing_names("Zażółć", "Maria", "Gęślą")
    assert names[0] == "ZAZOLC MARIA GESLA"
    assert "Z GESLA" in names
    long = embossing_names("Maximilian", "Alexander", "Von Hohenzollern-Sigmaringen")
    assert long
    assert all(len(n) <= MAX_LENGTH for n in long)
    assert all(set(n) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ .'-") for n in long)
    # Too long for every variant: the surname is cut at the card's edge.
    cut = embossing_names("Ana", None, "Wolfeschlegelsteinhausenbergerdorff")
    assert cut == ["A WOLFESCHLEGELSTEINHAUSEN"]
    assert len(cut[0]) == MAX_LENGTH


async def test_embossing_names_route(client: AsyncClient, partner: Partner) -> None:
    user = await create_user(client, partner)
    missing = await client.get(f"/v1/users/{user['id']}/embossing-names", headers=partner.headers)
    assert missing.json()["code"] == "KYC_INCOMPLETE"
    await client.put(
        f"/v1/users/{user['id']}/kyc/personal",
        json={**PERSONAL, "first_name": "Владимир", "middle_name": None, "last_name": "Žižek"},
        headers=partner.headers,
    )
    names = (
        await client.get(f"/v1/users/{user['id']}/embossing-names", headers=partner.headers)
    ).json()
    assert names["data"]["names"] == ["VLADIMIR ZIZEK", "V ZIZEK"]
