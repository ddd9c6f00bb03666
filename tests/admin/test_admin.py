"""Ops staff: login, lockout, the role matrix, admin management, network keys, audit log."""

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.roles import ROLE_MATRIX, Role
from cardcore.models import AdminUser, AuditLog
from tests.factories import PASSWORD, Partner, bearer, make_admin


async def _login(client: AsyncClient, partner: Partner, email: str, password: str) -> Response:
    return await client.post(
        "/v1/admin/auth/login",
        json={"program_id": partner.program_id, "email": email, "password": password},
    )


async def test_login_and_me(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    admin = await make_admin(app, partner, "manager")
    # Logging in is what this test is about: through the route, not the factory's token.
    logged_in = await _login(client, partner, admin.email, PASSWORD)
    assert logged_in.status_code == 200, logged_in.text
    token = logged_in.json()["data"]["access_token"]
    me = await client.get("/v1/admin/me", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["data"] == {**me.json()["data"], "id": admin.id, "role": "manager"}
    # An admin token is not a partner credential (ops read events, but not the partner's keys),
    # nor a cardholder's.
    assert (await client.get("/v1/events", headers=bearer(token))).status_code == 200
    assert (await client.get("/v1/api-keys", headers=bearer(token))).status_code == 403
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 403
    # And a partner key is not an admin.
    assert (await client.get("/v1/admin/me", headers=partner.headers)).status_code == 403


async def test_five_failures_lock_the_account_for_15_minutes(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    await make_admin(app, partner, "admin")
    for _ in range(5):
        wrong = await _login(client, partner, "admin@example.com", "wrong password!")
        assert wrong.status_code == 401
    locked = await _login(client, partner, "admin@example.com", "correct horse battery")
    assert locked.status_code == 423
    assert locked.json()["code"] == "ACCOUNT_LOCKED"
    admin = await session.scalar(select(AdminUser).where(AdminUser.email == "admin@example.com"))
    assert admin is not None
    await session.refresh(admin)
    assert admin.locked_until is not None
    assert admin.locked_until - datetime.now(UTC) > timedelta(minutes=14)
    # Time passes (moved, not waited for).
    await session.execute(
        update(AdminUser)
        .where(AdminUser.id == admin.id)
        .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()
    assert (
        await _login(client, partner, "admin@example.com", "correct horse battery")
    ).status_code == 200


async def test_unknown_admin_or_program_is_the_same_401(
    client: AsyncClient, partner: Partner
) -> None:
    for email, program in (("nobody@example.com", partner.program_id), ("a@b.c", "prg_nope")):
        response = await client.post(
            "/v1/admin/auth/login", json={"program_id": program, "email": email, "password": "x"}
        )
        assert response.status_code == 401
        assert response.json()["message"] == "Wrong program, email or password."


async def test_logins_are_audited(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    admin_id = (await make_admin(app, partner, "admin")).id
    await _login(client, partner, "admin@example.com", "wrong password!")
    assert (await _login(client, partner, "admin@example.com", PASSWORD)).status_code == 200
    rows = (
        await session.scalars(
            select(AuditLog).where(AuditLog.action == "login").order_by(AuditLog.id)
        )
    ).all()
    assert [(r.outcome, r.object_id) for r in rows] == [
        ("failure", "admin@example.com"),
        ("success", admin_id),
    ]
    assert rows[1].actor_id == admin_id
    assert rows[1].channel == "admin"


async def test_employee_is_refused_admin_only_routes(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    token = (await make_admin(app, partner, "employee")).token
    assert (await client.get("/v1/admin/me", headers=bearer(token))).status_code == 200
    for method, path, body in (
        ("GET", "/v1/admin/users", None),
        ("POST", "/v1/admin/network-keys", {"name": "x"}),
        ("GET", "/v1/admin/audit-log", None),
    ):
        response = await client.request(method, path, json=body, headers=bearer(token))
        assert response.status_code == 403, path
        assert response.json()["code"] == "FORBIDDEN"


async def test_the_role_matrix_decides_every_admin_route(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    routes = {
        "admin_users.manage": ("GET", "/v1/admin/users"),
        "audit_log.read": ("GET", "/v1/admin/audit-log"),
        "admin.me": ("GET", "/v1/admin/me"),
    }
    tokens = {}
    for role in Role:
        tokens[role] = (await make_admin(app, partner, role.value)).token
    for action, (method, path) in routes.items():
        for role in Role:
            response = await client.request(method, path, headers=bearer(tokens[role]))
            expected = 200 if role in ROLE_MATRIX[action] else 403
            assert response.status_code == expected, (action, role)


async def test_admins_manage_admins(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    admin = await make_admin(app, partner, "admin")
    admin_id, token = admin.id, admin.token
    created = await client.post(
        "/v1/admin/users",
        json={
            "email": "New.Person@Example.com",
            "password": "long enough pass",
            "role": "employee",
        },
        headers=bearer(token),
    )
    assert created.status_code == 201, created.text
    new = created.json()["data"]
    assert new["email"] == "new.person@example.com"
    promoted = await client.patch(
        f"/v1/admin/users/{new['id']}", json={"role": "manager"}, headers=bearer(token)
    )
    assert promoted.json()["data"]["role"] == "manager"
    self_demote = await client.patch(
        f"/v1/admin/users/{admin_id}", json={"active": False}, headers=bearer(token)
    )
    assert self_demote.status_code == 409
    # Deactivation takes effect on the next request, token or not.
    new_token = (await _login(client, partner, "new.person@example.com", "long enough pass")).json()
    deactivated = await client.patch(
        f"/v1/admin/users/{new['id']}", json={"active": False}, headers=bearer(token)
    )
    assert deactivated.status_code == 200
    access = new_token["data"]["access_token"]
    assert (await client.get("/v1/admin/me", headers=bearer(access))).status_code == 401


async def test_network_keys_are_network_principals(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    token = (await make_admin(app, partner, "admin")).token
    created = await client.post(
        "/v1/admin/network-keys", json={"name": "processor"}, headers=bearer(token)
    )
    assert created.status_code == 201
    network_key = created.json()["data"]
    assert network_key["kind"] == "network"
    # A network key is not a partner key.
    response = await client.get("/v1/events", headers={"X-API-Key": network_key["secret"]})
    assert response.status_code == 403


async def test_audit_log_lists_with_filters_and_stays_in_program(
    client: AsyncClient,
    app: FastAPI,
    partner: Partner,
    other_partner: Partner,
    session: AsyncSession,
) -> None:
    token = (await make_admin(app, partner, "manager")).token
    await client.post(
        "/v1/api-keys", json={"name": "a"}, headers={**partner.headers, "X-Request-Id": "aud-a"}
    )
    await client.post(
        "/v1/api-keys",
        json={"name": "b"},
        headers={**other_partner.headers, "X-Request-Id": "aud-b"},
    )
    mine = await client.get("/v1/admin/audit-log?request_id=aud-a", headers=bearer(token))
    assert [e["action"] for e in mine.json()["data"]] == ["create_api_key"]
    theirs = await client.get("/v1/admin/audit-log?request_id=aud-b", headers=bearer(token))
    assert theirs.json()["data"] == []
    failures = await client.get(
        "/v1/admin/audit-log?outcome=failure&limit=1", headers=bearer(token)
    )
    assert failures.status_code == 200
