"""Detached HS512 request signatures.

The partner's side is played by jwcrypto, a JOSE library cardcore does not use, so these tests
prove that what the README tells a partner to do works with any standard client, not only with
the library that verifies it.
"""

import base64
import json
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.jws import InvalidSignature, verify_request_signature
from cardcore.models import ApiKey, Card, JwsRequestId
from tests.auth.helpers import create_credential
from tests.cards.helpers import issue
from tests.factories import PERSONAL, Partner, make_card_program
from tests.kit.jose import CALLER_KEY, encrypt_to, opened, public_key_header, server_key, sign

SEED_SIGNATURE = (
    "eyJ1cmkiOiIvdjUvY2FyZC1hcGkvcmVxdWVzdC9zdGF0dXMiLCJhdXRoX2lkIjoiMTIzNDU2IiwibWV0aG9kIjoiUE9TVC"
    "IsInBhcmFtcyI6IiIsImFsZyI6IkhTNTEyIn0..f1sQoeIpX_ZjOaykQzSeylvvKaVrEQV4gNM2ACFbEMkFDUV9Zk5WO1yQ"
    "GEWez-vnQMVHodLBDVEyh5Xm2-3MjQ"
)
SEED_BODY = b'{"request_id":"828cf71d-a447-4a67-a149-c1df8bc197ca"}'


def test_the_seed_004_example_verifies() -> None:
    header = verify_request_signature(
        SEED_SIGNATURE,
        secret="secret",
        method="POST",
        path="/v5/card-api/request/status",
        query="",
        body=SEED_BODY,
    )
    assert header["auth_id"] == "123456"


@pytest.mark.parametrize(
    "change",
    [
        {"body": SEED_BODY.replace(b"828c", b"928c")},
        {"path": "/v5/card-api/request/other"},
        {"method": "PUT"},
        {"query": "a=1"},
        {"secret": "Secret"},
    ],
)
def test_the_seed_example_fails_when_anything_changes(change: dict[str, Any]) -> None:
    request = {
        "secret": "secret",
        "method": "POST",
        "path": "/v5/card-api/request/status",
        "query": "",
        "body": SEED_BODY,
        **change,
    }
    with pytest.raises(InvalidSignature):
        verify_request_signature(SEED_SIGNATURE, **request)


def signed_json(body: dict[str, Any], signature: str) -> dict[str, Any]:
    return {
        "content": json.dumps(body).encode(),
        "headers": {"X-JWS-Signature": signature, "Content-Type": "application/json"},
    }


@pytest.fixture
async def jws_credential(client: AsyncClient, partner: Partner) -> dict[str, str]:
    return await create_credential(client, partner, "jws")


async def _api_keys(session: AsyncSession, partner: Partner) -> int:
    return await session.scalar(  # type: ignore[no-any-return]
        select(func.count()).select_from(ApiKey).where(ApiKey.program_id == partner.program_id)
    )


async def test_a_signed_post_with_a_json_body_works_once(
    client: AsyncClient, jws_credential: dict[str, str], partner: Partner, session: AsyncSession
) -> None:
    before = await _api_keys(session, partner)
    body = json.dumps({"name": "signed", "request_id": "r-1"}).encode()
    signature = sign(jws_credential, "POST", "/v1/api-keys", body)
    headers = {"X-JWS-Signature": signature, "Content-Type": "application/json"}

    created = await client.post("/v1/api-keys", content=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["name"] == "signed"
    assert await _api_keys(session, partner) == before + 1

    # The captured request, byte for byte, is refused and does nothing.
    replayed = await client.post("/v1/api-keys", content=body, headers=headers)
    assert replayed.status_code == 409
    assert replayed.json()["code"] == "DUPLICATE_REQUEST_ID"
    again = {**headers, "X-Request-Id": "a-fresh-one"}
    assert (await client.post("/v1/api-keys", content=body, headers=again)).status_code == 409
    assert await _api_keys(session, partner) == before + 1


async def test_signed_patch_put_and_delete_work(
    client: AsyncClient, jws_credential: dict[str, str], partner: Partner
) -> None:
    user = (await client.post("/v1/users", json={}, headers=partner.headers)).json()["data"]
    path = f"/v1/users/{user['id']}"
    body = {"external_reference": "ext-1", "request_id": "patch-1"}
    signature = sign(jws_credential, "PATCH", path, json.dumps(body).encode())
    patched = await client.patch(path, **signed_json(body, signature))
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["external_reference"] == "ext-1"

    personal = {**PERSONAL, "request_id": "put-1"}
    kyc_path = f"{path}/kyc/personal"
    signature = sign(jws_credential, "PUT", kyc_path, json.dumps(personal).encode())
    put = await client.put(kyc_path, **signed_json(personal, signature))
    assert put.status_code == 200, put.text

    key = (
        await client.post("/v1/api-keys", json={"name": "doomed"}, headers=partner.headers)
    ).json()["data"]
    key_path = f"/v1/api-keys/{key['id']}"
    revoke = sign(jws_credential, "DELETE", key_path, request_id="del-1")
    revoked = await client.delete(key_path, headers={"X-JWS-Signature": revoke})
    assert revoked.status_code == 200, revoked.text


async def test_a_retry_with_a_new_request_id_is_answered_from_the_idempotency_key(
    client: AsyncClient, jws_credential: dict[str, str], partner: Partner, session: AsyncSession
) -> None:
    before = await _api_keys(session, partner)
    answers = []
    for request_id in ("idem-1", "idem-2"):
        body = {"name": "once", "request_id": request_id}
        signature = sign(jws_credential, "POST", "/v1/api-keys", json.dumps(body).encode())
        call = signed_json(body, signature)
        call["headers"]["Idempotency-Key"] = "create-once"
        answers.append(await client.post("/v1/api-keys", **call))
    assert [a.status_code for a in answers] == [201, 201], answers[1].text
    assert answers[1].headers.get("Idempotent-Replayed") == "true"
    assert answers[1].json() == answers[0].json()
    assert await _api_keys(session, partner) == before + 1


async def _freeze(
    client: AsyncClient, card_id: str, signature: str, request_id: str | None = None
) -> Response:
    headers = {"X-JWS-Signature": signature}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return await client.post(f"/v1/cards/{card_id}/freeze", headers=headers)


async def test_a_captured_bodyless_signature_cannot_freeze_the_card_again(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    jws_credential: dict[str, str],
    partner: Partner,
) -> None:
    setup = await make_card_program(app, partner)
    card = (await issue(client, partner, setup)).json()["data"]
    path = f"/v1/cards/{card['id']}/freeze"

    captured = sign(jws_credential, "POST", path, request_id="freeze-1")
    frozen = await _freeze(client, card["id"], captured, request_id="trace-1")
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["data"]["status"] == "FROZEN"
    unfrozen = await client.post(f"/v1/cards/{card['id']}/unfreeze", headers=partner.headers)
    assert unfrozen.json()["data"]["status"] == "ACTIVE"

    for fresh in (None, "trace-2", "freeze-2"):
        replay = await _freeze(client, card["id"], captured, request_id=fresh)
        assert replay.status_code == 409, fresh
        assert replay.json()["code"] == "DUPLICATE_REQUEST_ID"
    # A signature that does not sign its request id cannot borrow one from X-Request-Id.
    unsigned_id = sign(jws_credential, "POST", path)
    for fresh in ("trace-3", "trace-4"):
        refused = await _freeze(client, card["id"], unsigned_id, request_id=fresh)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "request_id"
    await session.refresh(await session.get(Card, card["id"]))  # type: ignore[arg-type]
    assert (await session.get(Card, card["id"])).status == "ACTIVE"  # type: ignore[union-attr]


async def test_a_signed_get(client: AsyncClient, jws_credential: dict[str, str]) -> None:
    signature = sign(jws_credential, "GET", "/v1/events", params="limit=5", request_id="g-1")
    listed = await client.get("/v1/events?limit=5", headers={"X-JWS-Signature": signature})
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["data"]) <= 5
    again = await client.get(
        "/v1/events?limit=5", headers={"X-JWS-Signature": signature, "X-Request-Id": "other"}
    )
    assert again.status_code == 409


def _with_header(signature: str, **changes: str) -> str:
    """The same signature under an edited protected header: what an attacker can do."""
    protected, _, mac = signature.split(".")
    header = json.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    edited = base64.urlsafe_b64encode(json.dumps({**header, **changes}).encode()).rstrip(b"=")
    return f"{edited.decode()}..{mac}"


async def test_tampering_is_refused(client: AsyncClient, jws_credential: dict[str, str]) -> None:
    body = b'{"name": "a", "request_id": "t-1"}'
    signature = sign(jws_credential, "POST", "/v1/api-keys", body)
    headers = {"X-JWS-Signature": signature, "Content-Type": "application/json"}
    for tampered in (body.replace(b'"a"', b'"b"'), body.replace(b"t-1", b"t-9")):
        response = await client.post("/v1/api-keys", content=tampered, headers=headers)
        assert response.status_code == 401, tampered

    events = sign(jws_credential, "GET", "/v1/events", request_id="t-2")
    moved_id = _with_header(events, request_id="t-3")
    assert (
        await client.get("/v1/events", headers={"X-JWS-Signature": moved_id})
    ).status_code == 401
    for path in ("/v1/api-keys", "/v1/events?limit=1"):
        response = await client.get(path, headers={"X-JWS-Signature": events})
        assert response.status_code == 401, path
    wrong_method = sign(jws_credential, "DELETE", "/v1/events", request_id="t-4")
    wrong_secret = sign(
        jws_credential, "GET", "/v1/events", secret="jws_" + "x" * 86, request_id="t-5"
    )
    for bad in (wrong_method, wrong_secret, "abc", "a.b.c", "e30..sig"):
        assert (await client.get("/v1/events", headers={"X-JWS-Signature": bad})).status_code == 401


async def test_the_request_id_must_be_signed_and_well_formed(
    client: AsyncClient, jws_credential: dict[str, str], session: AsyncSession
) -> None:
    unsigned_id = sign(jws_credential, "GET", "/v1/events")
    response = await client.get(
        "/v1/events", headers={"X-JWS-Signature": unsigned_id, "X-Request-Id": "r-x"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "request_id"

    body = {"name": "two ids", "request_id": "body-id"}
    disagree = sign(
        jws_credential, "POST", "/v1/api-keys", json.dumps(body).encode(), request_id="head-id"
    )
    response = await client.post("/v1/api-keys", **signed_json(body, disagree))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "request_id"

    # A card number, a NUL or a non-string is no request id; none of them is stored.
    for bad in ("4111111111111111", "4111-1111-1111-1111", "a\u0000b", 42, "x" * 129):
        body = {"name": "bad", "request_id": bad}
        signature = sign(jws_credential, "POST", "/v1/api-keys", json.dumps(body).encode())
        response = await client.post("/v1/api-keys", **signed_json(body, signature))
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["errors"][0]["field"] == "request_id"
        assert "4111" not in response.text
    stored = (
        await session.scalars(
            select(JwsRequestId.request_id).where(
                JwsRequestId.credential_id == jws_credential["id"]
            )
        )
    ).all()
    assert stored == []


async def test_a_request_id_in_the_header_also_signs_a_body(
    client: AsyncClient, jws_credential: dict[str, str]
) -> None:
    body = {"name": "header id"}
    signature = sign(
        jws_credential, "POST", "/v1/api-keys", json.dumps(body).encode(), request_id="h-1"
    )
    created = await client.post("/v1/api-keys", **signed_json(body, signature))
    assert created.status_code == 201, created.text
    assert (await client.post("/v1/api-keys", **signed_json(body, signature))).status_code == 409


async def test_an_unsigned_request_id_in_a_body_is_still_refused(
    client: AsyncClient, partner: Partner
) -> None:
    # Only a signed request's request_id is taken out of its body; anywhere else it is an
    # unknown field like any other.
    response = await client.post(
        "/v1/api-keys", json={"name": "k", "request_id": "r"}, headers=partner.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "request_id"


async def test_jws_for_program_a_cannot_reach_program_b(
    client: AsyncClient, jws_credential: dict[str, str], other_partner: Partner
) -> None:
    path = f"/v1/api-keys/{other_partner.api_key_id}"
    signature = sign(jws_credential, "GET", path, request_id="x-1")
    assert (await client.get(path, headers={"X-JWS-Signature": signature})).status_code == 404


async def test_revoked_jws_credential_is_refused(
    client: AsyncClient, jws_credential: dict[str, str], partner: Partner
) -> None:
    await client.delete(f"/v1/credentials/{jws_credential['id']}", headers=partner.headers)
    signature = sign(jws_credential, "GET", "/v1/events", request_id="rv")
    assert (
        await client.get("/v1/events", headers={"X-JWS-Signature": signature})
    ).status_code == 401


async def test_a_long_query_string_can_be_signed(
    client: AsyncClient, jws_credential: dict[str, str], partner: Partner
) -> None:
    reference = "customer-" + "7" * 91
    email = "a.rather.long.address.for.a.cardholder@subsidiary.example.com"
    body = {"external_reference": reference, "email": email}
    await client.post("/v1/users", json=body, headers=partner.headers)
    params = f"limit=100&status=ACTIVE&kyc_status=NOT_STARTED&email={email}"
    params += f"&external_reference={reference}"
    request_id = "8d0c2f7e-0b1c-4f3a-9d2e-5f6a7b8c9d0e"
    signature = sign(jws_credential, "GET", "/v1/users", params=params, request_id=request_id)
    assert len(signature.split(".")[0]) > 512, "beyond joserfc's default header cap"
    found = await client.get(f"/v1/users?{params}", headers={"X-JWS-Signature": signature})
    assert found.status_code == 200, found.text
    assert [u["external_reference"] for u in found.json()["data"]] == [reference]


async def test_the_signed_path_is_the_path_as_sent(
    client: AsyncClient, jws_credential: dict[str, str]
) -> None:
    # An escaped character in the path: the caller signs what it sends, percent-encoding and all,
    # and gets the route's own answer (no such user), not a refused signature.
    path = "/v1/users/usr_%C3%A9t%C3%A9"
    signature = sign(jws_credential, "GET", path, request_id="escaped-1")
    found = await client.get(path, headers={"X-JWS-Signature": signature})
    assert found.status_code == 404, found.text
    assert found.json()["code"] == "NOT_FOUND"


async def test_a_signed_request_can_also_be_encrypted(
    client: AsyncClient, jws_credential: dict[str, str]
) -> None:
    # The signature covers the JSON the caller wrote; the JWE around it is transport.
    body = {"name": "sealed", "request_id": "jwe-1"}
    signature = sign(jws_credential, "POST", "/v1/api-keys", json.dumps(body).encode())
    server = await server_key(client)
    headers = {
        "X-JWS-Signature": signature,
        "Content-Type": "application/json",
        "Public-Key": public_key_header(CALLER_KEY),
        "Encrypted-Request": "true",
    }
    created = await client.post("/v1/api-keys", content=encrypt_to(server, body), headers=headers)
    assert created.status_code == 201, created.text
    assert opened(created)["data"]["name"] == "sealed"
    again = await client.post("/v1/api-keys", content=encrypt_to(server, body), headers=headers)
    assert again.status_code == 409
