"""Partner credentials and tokens, and tokens forged with our own key, for the auth tests."""

import base64
import json
import time
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.factories import Partner


async def create_credential(client: AsyncClient, partner: Partner, type: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/credentials", json={"type": type, "name": type}, headers=partner.headers
    )
    assert response.status_code == 201, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


async def request_token(client: AsyncClient, client_id: str, secret: str) -> Response:
    return await client.post(
        "/v1/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
    )


async def partner_token(client: AsyncClient, partner: Partner) -> dict[str, Any]:
    credential = await create_credential(client, partner, "client_credentials")
    response = await request_token(client, credential["client_id"], credential["client_secret"])
    assert response.status_code == 200, response.text
    return {**response.json(), "client_id": credential["client_id"]}


def signing_key(app: FastAPI) -> RSAKey:
    key = app.state.token_keys.keys._current
    assert key is not None, "issue a token first"
    return key  # type: ignore[no-any-return]


def forge(app: FastAPI, claims: dict[str, Any], **header: Any) -> str:
    """A token signed with our real key, with the claims a test wants."""
    key = signing_key(app)
    return jwt.encode({"alg": "RS256", "kid": key.kid, **header}, claims, key, algorithms=["RS256"])


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> tuple[str, str]:
    """(header.payload, …) pieces for hand-made tokens."""
    return b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())


def base_claims(
    partner: Partner, subject: str, audience: str = "cardcore:partner"
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "cardcore",
        "aud": audience,
        "sub": subject,
        "prg": partner.program_id,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
    }
