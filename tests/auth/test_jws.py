"""Detached HS512 request signatures (seed 004)."""

import json

import pytest
from httpx import AsyncClient
from joserfc import jws
from joserfc.jwk import OctKey
from joserfc.registry import HeaderParameter

from cardcore.auth.jws import InvalidSignature, verify_request_signature
from tests.auth.helpers import create_credential
from tests.conftest import Partner

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
def test_the_seed_example_fails_when_anything_changes(change: dict) -> None:  # type: ignore[type-arg]
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


def sign(secret: str, auth_id: str, method: str, uri: str, params: str, body: bytes) -> str:
    """What a partner does: compact JWS over the body, then cut the payload out."""
    header = {"uri": uri, "auth_id": auth_id, "method": method, "params": params, "alg": "HS512"}
    registry = jws.JWSRegistry(
        header_registry={
            name: HeaderParameter(name, "str") for name in ("uri", "auth_id", "method", "params")
        },
        algorithms=["HS512"],
    )
    token = jws.serialize_compact(header, body, OctKey.import_key(secret), registry=registry)
    protected, _, signature = token.split(".")
    return f"{protected}..{signature}"


@pytest.fixture
async def jws_credential(client: AsyncClient, partner: Partner) -> dict[str, str]:
    return await create_credential(client, partner, "jws")


async def test_a_signed_request_is_accepted(
    client: AsyncClient, jws_credential, partner: Partner
) -> None:  # type: ignore[no-untyped-def]
    body = json.dumps({"name": "signed", "request_id": "r-1"}).encode()
    signature = sign(
        jws_credential["secret"], jws_credential["auth_id"], "POST", "/v1/api-keys", "", body
    )
    response = await client.post(
        "/v1/api-keys",
        content=body,
        headers={"X-JWS-Signature": signature, "Content-Type": "application/json"},
    )
    # The body carries request_id, which the api-keys schema does not take: 422 proves the
    # signature passed and the request reached validation.
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "request_id"

    get_signature = sign(
        jws_credential["secret"], jws_credential["auth_id"], "GET", "/v1/events", "limit=5", b""
    )
    listed = await client.get(
        "/v1/events?limit=5", headers={"X-JWS-Signature": get_signature, "X-Request-Id": "r-2"}
    )
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["data"]) <= 5


async def _get(
    client: AsyncClient, signature: str, path: str = "/v1/events", request_id: str = "x"
):  # type: ignore[no-untyped-def]
    return await client.get(
        path, headers={"X-JWS-Signature": signature, "X-Request-Id": request_id}
    )


async def test_reused_request_id_is_409_and_not_processed(
    client: AsyncClient, jws_credential
) -> None:  # type: ignore[no-untyped-def]
    signature = sign(
        jws_credential["secret"], jws_credential["auth_id"], "GET", "/v1/events", "", b""
    )
    assert (await _get(client, signature, request_id="once")).status_code == 200
    again = await _get(client, signature, request_id="once")
    assert again.status_code == 409
    assert again.json()["code"] == "DUPLICATE_REQUEST_ID"
    assert (await _get(client, signature, request_id="twice")).status_code == 200


async def test_tampering_is_refused(client: AsyncClient, jws_credential, partner: Partner) -> None:  # type: ignore[no-untyped-def]
    secret, auth_id = jws_credential["secret"], jws_credential["auth_id"]
    body = b'{"name": "a", "request_id": "t-1"}'
    signature = sign(secret, auth_id, "POST", "/v1/api-keys", "", body)
    tampered = await client.post(
        "/v1/api-keys",
        content=body.replace(b'"a"', b'"b"'),
        headers={"X-JWS-Signature": signature, "Content-Type": "application/json"},
    )
    assert tampered.status_code == 401

    events = sign(secret, auth_id, "GET", "/v1/events", "", b"")
    assert (await _get(client, events, path="/v1/api-keys", request_id="t-2")).status_code == 401
    assert (
        await _get(client, events, path="/v1/events?limit=1", request_id="t-3")
    ).status_code == 401
    wrong_method = sign(secret, auth_id, "DELETE", "/v1/events", "", b"")
    assert (await _get(client, wrong_method, request_id="t-4")).status_code == 401
    wrong_secret = sign("jws_not-the-secret", auth_id, "GET", "/v1/events", "", b"")
    assert (await _get(client, wrong_secret, request_id="t-5")).status_code == 401
    for garbage in ("abc", "a.b.c", "e30..sig"):
        assert (await _get(client, garbage, request_id="t-6")).status_code == 401


async def test_missing_request_id_is_a_validation_error(
    client: AsyncClient, jws_credential
) -> None:  # type: ignore[no-untyped-def]
    signature = sign(
        jws_credential["secret"], jws_credential["auth_id"], "GET", "/v1/events", "", b""
    )
    response = await client.get("/v1/events", headers={"X-JWS-Signature": signature})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "request_id"


async def test_jws_for_program_a_cannot_reach_program_b(
    client: AsyncClient, jws_credential, other_partner: Partner
) -> None:  # type: ignore[no-untyped-def]
    path = f"/v1/api-keys/{other_partner.api_key_id}"
    signature = sign(jws_credential["secret"], jws_credential["auth_id"], "GET", path, "", b"")
    assert (await _get(client, signature, path=path, request_id="x-1")).status_code == 404


async def test_revoked_jws_credential_is_refused(
    client: AsyncClient, jws_credential, partner: Partner
) -> None:  # type: ignore[no-untyped-def]
    await client.delete(f"/v1/credentials/{jws_credential['id']}", headers=partner.headers)
    signature = sign(
        jws_credential["secret"], jws_credential["auth_id"], "GET", "/v1/events", "", b""
    )
    assert (await _get(client, signature, request_id="rv")).status_code == 401
