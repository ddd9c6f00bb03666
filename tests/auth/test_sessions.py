"""Cardholder sessions: minted by the partner, confined to /v1/me and to one user."""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from tests.auth.helpers import base_claims, forge
from tests.factories import Partner, bearer, make_user


async def _mint(client: AsyncClient, partner: Partner, user_id: str, **body):  # type: ignore[no-untyped-def]
    return await client.post(f"/v1/users/{user_id}/sessions", json=body, headers=partner.headers)


async def test_session_reaches_me_and_only_me(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    user_id = await make_user(app, partner)
    minted = await _mint(client, partner, user_id, device_id="iphone-1")
    assert minted.status_code == 201, minted.text
    data = minted.json()["data"]
    assert data["expires_in"] == 600
    assert data["user_id"] == user_id

    me = await client.get("/v1/me", headers=bearer(data["access_token"]))
    assert me.status_code == 200
    assert me.json()["data"]["id"] == user_id
    # A session token on a partner route is the wrong kind of caller.
    partner_route = await client.get("/v1/events", headers=bearer(data["access_token"]))
    assert partner_route.status_code == 403
    assert partner_route.json()["code"] == "FORBIDDEN"


async def test_a_partner_key_on_me_is_forbidden(client: AsyncClient, partner: Partner) -> None:
    response = await client.get("/v1/me", headers=partner.headers)
    assert response.status_code == 403
    assert (await client.get("/v1/me")).status_code == 401


async def test_ending_the_session_kills_token_and_refresh(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    user_id = await make_user(app, partner)
    data = (await _mint(client, partner, user_id)).json()["data"]
    ended = await client.delete("/v1/me/session", headers=bearer(data["access_token"]))
    assert ended.status_code == 204
    assert (await client.get("/v1/me", headers=bearer(data["access_token"]))).status_code == 401
    refreshed = await client.post(
        "/v1/auth/refresh",
        data={"grant_type": "refresh_token", "refresh_token": data["refresh_token"]},
    )
    assert refreshed.json()["error"] == "invalid_grant"


async def test_session_refresh_rotates(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    user_id = await make_user(app, partner)
    data = (await _mint(client, partner, user_id)).json()["data"]
    refreshed = await client.post(
        "/v1/auth/refresh",
        data={"grant_type": "refresh_token", "refresh_token": data["refresh_token"]},
    )
    assert refreshed.status_code == 200
    new_access = refreshed.json()["access_token"]
    assert (await client.get("/v1/me", headers=bearer(new_access))).status_code == 200
    reused = await client.post(
        "/v1/auth/refresh",
        data={"grant_type": "refresh_token", "refresh_token": data["refresh_token"]},
    )
    assert reused.json()["error"] == "invalid_grant"
    # Reuse means theft: the session itself is over.
    assert (await client.get("/v1/me", headers=bearer(new_access))).status_code == 401


async def test_sessions_only_for_the_partners_own_active_users(
    client: AsyncClient,
    app: FastAPI,
    partner: Partner,
    other_partner: Partner,
    session: AsyncSession,
) -> None:
    theirs = await make_user(app, other_partner)
    assert (await _mint(client, partner, theirs)).status_code == 404
    assert (await _mint(client, partner, "usr_bad")).status_code == 404
    closed = await make_user(app, partner, closed=True)
    assert (await _mint(client, partner, closed)).status_code == 403


async def test_a_session_cannot_be_pointed_at_another_user(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    alice = await make_user(app, partner)
    bob = await make_user(app, partner)
    data = (await _mint(client, partner, alice)).json()["data"]
    # Even with our own signing key, a token whose subject is not the session's user fails.
    claims = {
        **base_claims(partner, bob, "cardcore:cardholder"),
        "sid": data["session_id"],
    }
    assert (await client.get("/v1/me", headers=bearer(forge(app, claims)))).status_code == 401
