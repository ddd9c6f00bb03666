"""Ops staff reach a program's cardholders, cards, balances and transactions through the same
routes partners use, as far as the role matrix lets them: customer service (employee) can answer
"why was my card declined?" and freeze the card, and never reaches another program's objects.
(That ops never see full card data is tests/cards/test_cards.py's.)"""

from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.roles import Role
from cardcore.models import AuditLog
from tests.authorizations.network import authorization
from tests.factories import Partner, World, bearer, make_admin


def _reads(world: World, transaction_id: str) -> list[str]:
    card, holder = world.card, world.card.user_id
    return [
        f"/v1/users/{holder}",
        "/v1/users?kyc_status=APPROVED",
        f"/v1/users/{holder}/kyc",
        f"/v1/cards/{card.id}",
        f"/v1/cards?user_id={holder}",
        f"/v1/users/{holder}/cards",
        f"/v1/balances/{card.balance_id}",
        f"/v1/balances/{card.balance_id}/ledger",
        f"/v1/users/{holder}/balances",
        "/v1/transactions?status=DECLINED",
        f"/v1/cards/{card.id}/transactions",
        f"/v1/transactions/{transaction_id}",
        f"/v1/fees?card_id={card.id}",
        "/v1/events?type=card.created",
    ]


async def _declined(client: AsyncClient, world: World) -> str:
    """A card message declined for want of funds; its transaction id."""
    answer = await client.post(
        "/v1/network/authorizations",
        json=authorization(world.card.id, 999_999_00, "ops-declined"),
        headers=world.network.headers,
    )
    assert answer.json()["approved"] is False, answer.text
    transaction_id: str = answer.json()["authorization_id"]
    return transaction_id


async def test_every_role_reads_what_a_support_call_needs(
    client: AsyncClient, app: FastAPI, world: World
) -> None:
    declined = await _declined(client, world)
    for role in Role:
        admin = world.admin if role is Role.ADMIN else await make_admin(app, world.partner, role)
        staff = bearer(admin.token)
        for path in _reads(world, declined):
            response = await client.get(path, headers=staff)
            assert response.status_code == 200, (role, path, response.text)
        card = (await client.get(f"/v1/cards/{world.card.id}", headers=staff)).json()["data"]
        assert "pan" not in card
        assert card["masked_pan"][8:12] == "****"
        detail = (await client.get(f"/v1/transactions/{declined}", headers=staff)).json()["data"]
        assert detail["status"] == "DECLINED"
        assert detail["decline_reason"] == "INSUFFICIENT_FUNDS"
        assert detail["history"][0]["response"]["response_code"] == "51"


async def test_an_employee_freezes_a_card_and_the_audit_trail_names_them(
    client: AsyncClient, app: FastAPI, world: World, session: AsyncSession
) -> None:
    employee = await make_admin(app, world.partner, "employee")
    frozen = await client.post(
        f"/v1/cards/{world.card.id}/freeze",
        headers={**bearer(employee.token), "X-Request-Id": "ops-freeze"},
    )
    assert frozen.status_code == 200, frozen.text
    assert frozen.json()["data"]["status"] == "FROZEN"
    entry = await session.scalar(select(AuditLog).where(AuditLog.request_id == "ops-freeze"))
    assert entry is not None
    assert (entry.actor_type, entry.actor_id, entry.outcome) == ("admin", employee.id, "success")
    declined = await client.post(
        "/v1/network/authorizations",
        json=authorization(world.card.id, 100, "ops-after-freeze"),
        headers=world.network.headers,
    )
    assert declined.json()["approved"] is False


async def test_an_employee_cannot_unlock_or_close_a_card(
    client: AsyncClient, app: FastAPI, world: World
) -> None:
    staff = bearer((await make_admin(app, world.partner, "employee")).token)
    for method, path in (
        ("POST", f"/v1/cards/{world.card.id}/unlock"),
        ("DELETE", f"/v1/cards/{world.card.id}"),
    ):
        response = await client.request(method, path, headers=staff)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "FORBIDDEN", path


async def test_staff_of_another_program_find_nothing(
    client: AsyncClient, app: FastAPI, world: World, other_partner: Partner
) -> None:
    declined = await _declined(client, world)
    stranger = bearer((await make_admin(app, other_partner, "admin")).token)
    for path in _reads(world, declined):
        response = await client.get(path, headers=stranger)
        if "?" in path:  # a list: empty, however it is filtered
            assert response.status_code == 200, (path, response.text)
            assert response.json()["data"] == [], path
        else:
            assert response.status_code == 404, (path, response.text)
    frozen = await client.post(f"/v1/cards/{world.card.id}/freeze", headers=stranger)
    assert frozen.status_code == 404


async def test_a_manager_lifts_a_lock_an_employee_cannot(
    client: AsyncClient, app: FastAPI, world: World
) -> None:
    locked = await client.post(
        f"/v1/cards/{world.card.id}/lock", json={"reason_code": 3}, headers=world.partner.headers
    )
    assert locked.status_code == 200, locked.text
    employee = bearer((await make_admin(app, world.partner, "employee")).token)
    refused = await client.post(f"/v1/cards/{world.card.id}/unlock", headers=employee)
    assert refused.status_code == 403
    manager = bearer((await make_admin(app, world.partner, "manager")).token)
    unlocked = await client.post(f"/v1/cards/{world.card.id}/unlock", headers=manager)
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["data"]["status"] == "ACTIVE"
