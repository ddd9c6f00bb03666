"""Text PostgreSQL cannot store (NUL, unpaired surrogates) is a 422 naming the field, wherever it
is sent: a body field, a nested one, a key, a query filter. It used to be a 500 from the
database. One check in the route class covers every route; these are a sample of places."""

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from tests.authorizations.network import body as authorization
from tests.customers.helpers import create_user
from tests.factories import ADDRESS, PERSONAL, Partner, World, bearer, make_admin

NUL = "\u0000"


def refused_fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    payload = response.json()
    assert payload["code"] == "VALIDATION_ERROR"
    codes = {error["code"] for error in payload["errors"]}
    assert codes == {"UNSTORABLE_CHARACTER"}, payload
    return [error["field"] for error in payload["errors"]]


@pytest.mark.parametrize("value", [f"a{NUL}b", NUL, f"{NUL}" * 3])
async def test_a_nul_in_a_body_field(client: AsyncClient, partner: Partner, value: str) -> None:
    response = await client.post(
        "/v1/users", json={"external_reference": value}, headers=partner.headers
    )
    assert refused_fields(response) == ["external_reference"]
    listed = await client.get("/v1/users", headers=partner.headers)
    assert listed.json()["data"] == [], "nothing was created"


async def test_an_unpaired_surrogate_is_refused_like_a_nul(
    client: AsyncClient, partner: Partner
) -> None:
    for raw in (b'{"external_reference": "a\\ud800b"}', b'{"email": "x\\udfff@example.com"}'):
        response = await client.post(
            "/v1/users",
            content=raw,
            headers={**partner.headers, "Content-Type": "application/json"},
        )
        assert len(refused_fields(response)) == 1


async def test_kyc_names_and_address_lines(client: AsyncClient, partner: Partner) -> None:
    user = await create_user(client, partner)
    personal = await client.put(
        f"/v1/users/{user['id']}/kyc/personal",
        json={**PERSONAL, "first_name": f"Zo{NUL}fia", "last_name": f"{NUL}Kowalska"},
        headers=partner.headers,
    )
    assert sorted(refused_fields(personal)) == ["first_name", "last_name"]
    address = await client.post(
        f"/v1/users/{user['id']}/kyc/addresses",
        json={**ADDRESS, "line1": f"ul. Marszałkowska{NUL}1"},
        headers=partner.headers,
    )
    assert refused_fields(address) == ["line1"]


async def test_nested_fields_and_keys_are_named(
    client: AsyncClient,
    world: World,
) -> None:
    message = authorization(world)
    message["merchant"] = {**message["merchant"], "name": f"Shop{NUL}", "city": f"{NUL}"}
    response = await client.post(
        "/v1/network/authorizations", json=message, headers=world.network.headers
    )
    assert sorted(refused_fields(response)) == ["merchant.city", "merchant.name"]

    settings = await client.patch(
        "/v1/admin/program-settings",
        json={"clearing_tolerances": {f"58{NUL}13": 100}},
        headers=world.admin.headers,
    )
    assert refused_fields(settings) == ["clearing_tolerances.[key]"]


async def test_query_filters(client: AsyncClient, app: FastAPI, partner: Partner, session) -> None:  # type: ignore[no-untyped-def]
    token = (await make_admin(app, partner, "admin")).token
    for path, params, headers in (
        ("/v1/users", {"email": f"a{NUL}@example.com"}, partner.headers),
        ("/v1/users", {"external_reference": NUL}, partner.headers),
        ("/v1/users", {"national_id": f"ABC{NUL}"}, partner.headers),
        ("/v1/events", {"type": f"card{NUL}"}, partner.headers),
        ("/v1/admin/audit-log", {"action": NUL, "object_id": f"x{NUL}"}, bearer(token)),
    ):
        response = await client.get(path, params=params, headers=headers)
        assert sorted(refused_fields(response)) == sorted(params), path


async def test_ordinary_text_is_untouched(client: AsyncClient, partner: Partner) -> None:
    """The check refuses only what cannot be stored: escapes, accents, CJK and emoji pass."""
    text = 'Zoë \\u0000 "Łódź" 東京 😀 \t tab'
    user = await create_user(client, partner, external_reference=text)
    assert user["external_reference"] == text
    found = await client.get(
        "/v1/users", params={"external_reference": text}, headers=partner.headers
    )
    assert [u["id"] for u in found.json()["data"]] == [user["id"]]


async def test_the_audit_trail_keeps_a_refused_request_with_a_nul_in_its_path(
    client: AsyncClient, app: FastAPI, partner: Partner, session
) -> None:  # type: ignore[no-untyped-def]
    """The path and the object id of the audit row are the caller's text too: a NUL there used
    to fail the audit write, so the refused attempt went unrecorded."""
    token = (await make_admin(app, partner, "admin")).token
    refused = await client.post(
        "/v1/users/usr_%00nope/kyc/decision",
        json={"decision": "APPROVED"},
        headers=partner.headers,
    )
    assert refused.status_code == 404, refused.text
    audit = await client.get("/v1/admin/audit-log", headers=bearer(token))
    [row] = [e for e in audit.json()["data"] if e["path"].startswith("/v1/users/usr_")]
    assert (row["path"], row["object_id"], row["status_code"]) == (
        "/v1/users/usr_\ufffdnope/kyc/decision",
        "usr_\ufffdnope",
        404,
    )
