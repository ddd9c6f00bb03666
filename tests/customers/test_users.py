from httpx import AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.customers.helpers import create_user
from tests.factories import PERSONAL, Partner


async def test_create_validates_and_normalizes(client: AsyncClient, partner: Partner) -> None:
    user = await create_user(
        client,
        partner,
        external_reference="crm-1",
        email="Zofia@Example.COM",
        phone="+48 601 234 567",
    )
    assert user["id"].startswith("usr_")
    assert user["email"] == "Zofia@example.com"
    assert user["phone"] == "+48601234567"
    assert user["kyc_status"] == "NOT_STARTED"
    for bad in ({"email": "not-an-email"}, {"phone": "601 234 567"}, {"phone": "+1 000"}):
        response = await client.post("/v1/users", json=bad, headers=partner.headers)
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] in ("email", "phone")


async def test_external_reference_is_unique_per_program(
    client: AsyncClient, partner: Partner, other_partner: Partner
) -> None:
    await create_user(client, partner, external_reference="crm-1")
    again = await client.post(
        "/v1/users", json={"external_reference": "crm-1"}, headers=partner.headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "ALREADY_EXISTS"
    # Another program may use the same reference.
    await create_user(client, other_partner, external_reference="crm-1")


async def test_lookups(client: AsyncClient, partner: Partner, other_partner: Partner) -> None:
    alice = await create_user(
        client, partner, external_reference="a", email="a@example.com", phone="+48601234567"
    )
    bob = await create_user(client, partner, external_reference="b")
    await client.put(f"/v1/users/{bob['id']}/kyc/personal", json=PERSONAL, headers=partner.headers)
    theirs = await create_user(client, other_partner, external_reference="a")
    await client.put(
        f"/v1/users/{theirs['id']}/kyc/personal", json=PERSONAL, headers=other_partner.headers
    )

    async def ids(query: str, who: Partner = partner) -> list[str]:
        response = await client.get(f"/v1/users?{query}", headers=who.headers)
        assert response.status_code == 200, response.text
        return [u["id"] for u in response.json()["data"]]

    assert await ids("external_reference=a") == [alice["id"]]
    assert await ids("email=A@example.com") == [alice["id"]]
    assert await ids("phone=%2B48 601 234 567") == [alice["id"]]
    # Finding a customer by national id (a CNIC, say); spacing and case do not matter.
    assert await ids("national_id=abc123456") == [bob["id"]]
    assert await ids("national_id=ABC 123456", other_partner) == [theirs["id"]]
    assert await ids("kyc_status=PENDING") == [bob["id"]]
    assert await ids("status=ACTIVE") == [bob["id"], alice["id"]]


async def test_national_id_is_masked_and_never_stored_in_clear(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    user = await create_user(client, partner)
    await client.put(f"/v1/users/{user['id']}/kyc/personal", json=PERSONAL, headers=partner.headers)
    for path in (f"/v1/users/{user['id']}", "/v1/users", f"/v1/users/{user['id']}/kyc"):
        response = await client.get(path, headers=partner.headers)
        assert "123456" not in response.text.replace("****3456", ""), path
        assert "****3456" in response.text, path
    dump = await session.scalar(text("SELECT string_agg(u::text, '|') FROM users u"))
    assert "ABC123456" not in dump
    assert "123456" not in dump


async def test_update_and_close(client: AsyncClient, partner: Partner) -> None:
    user = await create_user(client, partner, email="a@example.com")
    updated = await client.patch(
        f"/v1/users/{user['id']}", json={"phone": "+44 20 7946 0958"}, headers=partner.headers
    )
    assert updated.json()["data"]["phone"] == "+442079460958"
    assert updated.json()["data"]["email"] == "a@example.com"
    closed = await client.post(f"/v1/users/{user['id']}/close", headers=partner.headers)
    assert closed.json()["data"]["status"] == "CLOSED"
    again = await client.patch(
        f"/v1/users/{user['id']}", json={"email": "b@example.com"}, headers=partner.headers
    )
    assert again.status_code == 409
    assert again.json()["code"] == "USER_CLOSED"
    personal = await client.put(
        f"/v1/users/{user['id']}/kyc/personal", json=PERSONAL, headers=partner.headers
    )
    assert personal.json()["code"] == "USER_CLOSED"
    # A closed user can no longer get a session.
    session = await client.post(
        f"/v1/users/{user['id']}/sessions", json={}, headers=partner.headers
    )
    assert session.status_code == 403


async def test_another_programs_users_are_404(
    client: AsyncClient, partner: Partner, other_partner: Partner
) -> None:
    user = await create_user(client, partner)
    for method, path in (
        ("GET", f"/v1/users/{user['id']}"),
        ("PATCH", f"/v1/users/{user['id']}"),
        ("POST", f"/v1/users/{user['id']}/close"),
        ("GET", f"/v1/users/{user['id']}/kyc"),
        ("PUT", f"/v1/users/{user['id']}/kyc/personal"),
        ("POST", f"/v1/users/{user['id']}/kyc/submit"),
        ("GET", f"/v1/users/{user['id']}/embossing-names"),
    ):
        body = PERSONAL if method == "PUT" else ({} if method == "PATCH" else None)
        response = await client.request(method, path, json=body, headers=other_partner.headers)
        assert response.status_code == 404, path
    assert (await client.get("/v1/users", headers=other_partner.headers)).json()["data"] == []


async def test_me_shows_the_cardholders_own_profile(client: AsyncClient, partner: Partner) -> None:
    user = await create_user(client, partner, email="me@example.com")
    await client.put(f"/v1/users/{user['id']}/kyc/personal", json=PERSONAL, headers=partner.headers)
    token = (
        await client.post(f"/v1/users/{user['id']}/sessions", json={}, headers=partner.headers)
    ).json()["data"]["access_token"]
    me = (await client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})).json()["data"]
    assert (me["id"], me["kyc_status"], me["email"], me["national_id_masked"]) == (
        user["id"],
        "PENDING",
        "me@example.com",
        "****3456",
    )


async def test_reference_data(client: AsyncClient) -> None:
    countries = (await client.get("/v1/countries")).json()["data"]
    assert {"code": "PL", "alpha3": "POL", "numeric": "616", "name": "Poland"} in countries
    assert len(countries) > 240
    states = (await client.get("/v1/countries/pl/states")).json()["data"]
    assert {s["code"] for s in states} >= {"PL-14", "PL-02"}
    assert (await client.get("/v1/countries/XX/states")).status_code == 404


async def test_national_id_and_birth_date_never_reach_the_logs(
    client: AsyncClient, partner: Partner, capsys
) -> None:  # type: ignore[no-untyped-def]
    from cardcore.kit.logging import configure_logging

    configure_logging("DEBUG", "json")
    user = await create_user(client, partner)
    await client.put(f"/v1/users/{user['id']}/kyc/personal", json=PERSONAL, headers=partner.headers)
    await client.get("/v1/users?national_id=ABC123456", headers=partner.headers)
    bad = {**PERSONAL, "date_of_birth": "2999-01-01"}
    await client.put(f"/v1/users/{user['id']}/kyc/personal", json=bad, headers=partner.headers)
    out = capsys.readouterr().out
    assert out, "the requests were logged"
    for secret in ("123456", "1990-04-01", "2999-01-01"):
        assert secret not in out
