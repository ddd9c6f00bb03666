"""OAuth client credentials, refresh rotation, and every way a bad token must fail."""

import hashlib
import hmac
import time
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.models import AuditLog, RefreshToken
from tests.auth.helpers import (
    b64,
    base_claims,
    create_credential,
    forge,
    partner_token,
    request_token,
    signing_key,
    unsigned,
)
from tests.factories import Partner, bearer, make_admin, make_user


async def test_client_credentials_token_works_as_bearer_and_x_auth_token(
    client: AsyncClient, partner: Partner
) -> None:
    issued = await partner_token(client, partner)
    assert issued["token_type"] == "Bearer"
    assert issued["expires_in"] == 900
    for headers in (bearer(issued["access_token"]), {"X-Auth-Token": issued["access_token"]}):
        response = await client.get("/v1/program", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["id"] == partner.program_id


async def test_client_secret_in_the_body_works_and_answers_are_rfc6749(
    client: AsyncClient, partner: Partner
) -> None:
    credential = await create_credential(client, partner, "client_credentials")
    ok = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": credential["client_id"],
            "client_secret": credential["client_secret"],
        },
    )
    assert ok.status_code == 200
    assert ok.headers["Cache-Control"] == "no-store"

    wrong = await request_token(client, credential["client_id"], "cs_wrong")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert "error_description" in wrong.json()
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")

    unknown = await request_token(client, "crd_01m80k0t4srfsqm4vtjebjnzfq", "x")
    assert unknown.json()["error"] == "invalid_client"

    grant = await client.post("/v1/auth/token", data={"grant_type": "password"})
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    as_json = await client.post("/v1/auth/token", json={"grant_type": "client_credentials"})
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")


async def test_token_requests_are_audited(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    credential = await create_credential(client, partner, "client_credentials")
    await request_token(client, credential["client_id"], "wrong")
    await request_token(client, credential["client_id"], credential["client_secret"])
    rows = (
        await session.scalars(
            select(AuditLog)
            .where(AuditLog.action == "token", AuditLog.object_id == credential["client_id"])
            .order_by(AuditLog.id)
        )
    ).all()
    assert [(r.outcome, r.error_code) for r in rows] == [
        ("failure", "OAUTH_INVALID_CLIENT"),
        ("success", None),
    ]
    assert rows[1].actor_id == credential["client_id"]
    assert rows[1].program_id == partner.program_id


async def _refresh(client: AsyncClient, token: str):  # type: ignore[no-untyped-def]
    return await client.post(
        "/v1/auth/refresh", data={"grant_type": "refresh_token", "refresh_token": token}
    )


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: AsyncClient, partner: Partner, session: AsyncSession
) -> None:
    issued = await partner_token(client, partner)
    first = await _refresh(client, issued["refresh_token"])
    assert first.status_code == 200, first.text
    second = await _refresh(client, first.json()["refresh_token"])
    assert second.status_code == 200

    # The first refresh token was spent: presenting it again is theft.
    reuse = await _refresh(client, issued["refresh_token"])
    assert (reuse.status_code, reuse.json()["error"]) == (400, "invalid_grant")
    # ... and the newest token of the family, never used, is dead too.
    newest = await _refresh(client, second.json()["refresh_token"])
    assert newest.json()["error"] == "invalid_grant"
    family = (await session.scalars(select(RefreshToken.revoked_at))).all()
    assert family
    assert all(revoked is not None for revoked in family)
    # Access tokens already issued stay valid until they expire (they are short-lived).
    assert (
        await client.get("/v1/program", headers=bearer(second.json()["access_token"]))
    ).status_code == 200


async def test_refresh_also_works_at_the_token_endpoint(
    client: AsyncClient, partner: Partner
) -> None:
    issued = await partner_token(client, partner)
    response = await client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": issued["refresh_token"]},
    )
    assert response.status_code == 200
    assert (await _refresh(client, "crt_nonsense")).json()["error"] == "invalid_grant"


async def test_revoking_the_credential_kills_its_tokens(
    client: AsyncClient, partner: Partner
) -> None:
    issued = await partner_token(client, partner)
    revoked = await client.delete(f"/v1/credentials/{issued['client_id']}", headers=partner.headers)
    assert revoked.status_code == 200
    assert (
        await client.get("/v1/program", headers=bearer(issued["access_token"]))
    ).status_code == 401
    assert (await _refresh(client, issued["refresh_token"])).json()["error"] == "invalid_grant"


@pytest.fixture
async def live_token(client: AsyncClient, partner: Partner) -> dict[str, str]:
    return await partner_token(client, partner)


async def _status(client: AsyncClient, token: str) -> int:
    response = await client.get("/v1/program", headers=bearer(token))
    if response.status_code == 401:
        assert response.json()["code"] == "UNAUTHENTICATED"
    return response.status_code


async def test_alg_none_is_refused(
    client: AsyncClient, app: FastAPI, partner: Partner, live_token
) -> None:  # type: ignore[no-untyped-def]
    kid = signing_key(app).kid
    head, body = unsigned(
        {"alg": "none", "kid": kid}, base_claims(partner, live_token["client_id"])
    )
    assert await _status(client, f"{head}.{body}.") == 401


async def test_hs256_and_the_hs_rs_confusion_are_refused(
    client: AsyncClient, app: FastAPI, partner: Partner, live_token
) -> None:  # type: ignore[no-untyped-def]
    key = signing_key(app)
    public_pem = key.as_pem(private=False)
    head, body = unsigned(
        {"alg": "HS256", "kid": key.kid}, base_claims(partner, live_token["client_id"])
    )
    # The classic attack: HMAC keyed with our public key, hoping we verify HS with it.
    signature = hmac.new(public_pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert await _status(client, f"{head}.{body}.{b64(signature)}") == 401
    other = hmac.new(b"guess", f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert await _status(client, f"{head}.{body}.{b64(other)}") == 401


async def test_bad_signature_and_foreign_key_are_refused(
    client: AsyncClient, app: FastAPI, partner: Partner, live_token
) -> None:  # type: ignore[no-untyped-def]
    token = live_token["access_token"]
    head, body, sig = token.split(".")
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    assert await _status(client, f"{head}.{body}.{flipped}") == 401
    # A well-formed RS256 token from someone else's key, even one claiming our kid.
    stranger = RSAKey.generate_key(2048, parameters={"kid": signing_key(app).kid})
    claims = base_claims(partner, live_token["client_id"])
    forged = jwt.encode(
        {"alg": "RS256", "kid": stranger.kid}, claims, stranger, algorithms=["RS256"]
    )
    assert await _status(client, forged) == 401
    unknown_kid = jwt.encode(
        {"alg": "RS256", "kid": "sk_nobody"}, claims, stranger, algorithms=["RS256"]
    )
    assert await _status(client, unknown_kid) == 401
    assert await _status(client, "not.a.jwt") == 401


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"exp": int(time.time()) - 60}, "expired"),
        ({"nbf": int(time.time()) + 600}, "not yet valid"),
        ({"iss": "someone-else"}, "wrong issuer"),
        ({"aud": "another-api"}, "wrong audience"),
        ({"sub": None}, "no subject"),
    ],
)
async def test_claims_are_checked(
    client: AsyncClient, app: FastAPI, partner: Partner, live_token, change, why
) -> None:  # type: ignore[no-untyped-def]
    claims = {**base_claims(partner, live_token["client_id"]), **change}
    claims = {k: v for k, v in claims.items() if v is not None}
    assert await _status(client, forge(app, claims)) == 401, why
    # The same claims without the change pass, so the test fails for the reason it names.
    assert await _status(client, forge(app, base_claims(partner, live_token["client_id"]))) == 200


async def test_a_token_for_program_a_cannot_reach_program_b(
    client: AsyncClient, app: FastAPI, partner: Partner, other_partner: Partner, live_token
) -> None:  # type: ignore[no-untyped-def]
    key_of_b = other_partner.api_key_id
    response = await client.get(
        f"/v1/api-keys/{key_of_b}", headers=bearer(live_token["access_token"])
    )
    assert response.status_code == 404
    # Claiming program B with program A's credential fails outright.
    claims = {**base_claims(partner, live_token["client_id"]), "prg": other_partner.program_id}
    assert await _status(client, forge(app, claims)) == 401


async def test_one_credential_per_request(
    client: AsyncClient, partner: Partner, live_token
) -> None:  # type: ignore[no-untyped-def]
    headers = {**partner.headers, **bearer(live_token["access_token"])}
    assert (await client.get("/v1/program", headers=headers)).status_code == 401


async def test_jwks_publishes_the_verification_key(
    client: AsyncClient, app: FastAPI, live_token
) -> None:  # type: ignore[no-untyped-def]
    keys = (await client.get("/.well-known/jwks.json")).json()["keys"]
    assert signing_key(app).kid in {k["kid"] for k in keys}
    assert all("d" not in k for k in keys), "no private parts"


async def test_a_token_with_several_audiences_is_refused(
    client: AsyncClient, app: FastAPI, partner: Partner, live_token
) -> None:  # type: ignore[no-untyped-def]
    claims = {
        **base_claims(partner, live_token["client_id"]),
        "aud": ["somewhere", "cardcore:partner"],
    }
    assert await _status(client, forge(app, claims)) == 401


async def _token_of_each_kind(
    kind: str, client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> tuple[str, str, str]:
    """(a real access token, a route it opens, the setting capping its lifetime)."""
    if kind == "partner":
        token = (await partner_token(client, partner))["access_token"]
        return token, "/v1/program", "access_token_ttl_seconds"
    if kind == "cardholder":
        user_id = await make_user(app, partner)
        minted = await client.post(
            f"/v1/users/{user_id}/sessions", json={}, headers=partner.headers
        )
        return minted.json()["data"]["access_token"], "/v1/me", "session_ttl_seconds"
    token = (await make_admin(app, partner, "admin")).token
    return token, "/v1/admin/audit-log", "admin_token_ttl_seconds"


@pytest.mark.parametrize("kind", ["partner", "cardholder", "admin"])
async def test_a_token_living_longer_than_its_kind_allows_is_refused(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession, kind: str
) -> None:
    token, route, setting = await _token_of_each_kind(kind, client, app, partner, session)
    claims = jwt.decode(token, signing_key(app), algorithms=["RS256"]).claims
    limit = getattr(app.state.settings, setting)
    assert claims["exp"] - claims["iat"] == limit

    async def status(changed: dict[str, Any]) -> int:
        new = {k: v for k, v in {**claims, **changed}.items() if v is not None}
        return (await client.get(route, headers=bearer(forge(app, new)))).status_code

    assert await status({}) == 200
    assert await status({"exp": claims["iat"] + limit + 1}) == 401
    # Without an issue time the lifetime cannot be told, so the token is not taken.
    assert await status({"iat": None}) == 401
    # Nor can a token dated in the future make its lifetime look short.
    assert await status({"iat": claims["exp"] - 60}) == 401


async def test_a_lower_lifetime_setting_applies_to_tokens_already_issued(
    client: AsyncClient, app: FastAPI, live_token
) -> None:  # type: ignore[no-untyped-def]
    token = live_token["access_token"]
    assert await _status(client, token) == 200
    app.state.settings = app.state.settings.model_copy(update={"access_token_ttl_seconds": 600})
    assert await _status(client, token) == 401
