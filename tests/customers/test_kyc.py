"""The KYC / KYB status machine, walked through every allowed and every refused transition."""

import itertools
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.customers.verification import TRANSITIONS, Action, transition
from cardcore.kit.errors import CardcoreError
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.models import Event, KycDocument, User, VerificationStatus
from tests.customers.helpers import JPEG, PDF, PNG, complete_kyc, create_user, upload
from tests.factories import ADDRESS, PERSONAL, Partner, bearer, make_admin

PARTNER = Principal(PrincipalKind.PARTNER, program_id="prg_x", actor_id="key_x")


@pytest.mark.parametrize(
    ("state", "action", "to"),
    list(itertools.product(VerificationStatus, Action, VerificationStatus)),
)
async def test_every_pair_of_states_for_every_action(
    session: AsyncSession,
    partner: Partner,
    state: VerificationStatus,
    action: Action,
    to: VerificationStatus,
) -> None:
    user = User(program_id=partner.program_id, kyc_status=state.value)
    session.add(user)
    await session.flush()
    allowed = to in TRANSITIONS[action].get(state, frozenset())
    if allowed:
        await transition(session, user, action, to, principal=PARTNER, reason="r")
        assert user.kyc_status == to.value
    else:
        with pytest.raises(CardcoreError) as refused:
            await transition(session, user, action, to, principal=PARTNER)
        expected = (
            "KYC_LOCKED"
            if action is Action.EDIT
            and state
            in (
                VerificationStatus.IN_REVIEW,
                VerificationStatus.APPROVED,
            )
            else "INVALID_KYC_TRANSITION"
        )
        assert refused.value.code == expected
        assert user.kyc_status == state.value
    await session.rollback()


def test_the_table_is_the_documented_machine() -> None:
    allowed = {
        (action, state, to)
        for action, table in TRANSITIONS.items()
        for state, targets in table.items()
        for to in targets
    }
    S, A = VerificationStatus, Action
    assert allowed == {
        (A.EDIT, S.NOT_STARTED, S.PENDING),
        (A.EDIT, S.PENDING, S.PENDING),
        (A.EDIT, S.REJECTED, S.PENDING),
        (A.SUBMIT, S.PENDING, S.IN_REVIEW),
        *(
            (A.PARTNER_DECISION, s, t)
            for s in (S.NOT_STARTED, S.PENDING, S.IN_REVIEW)
            for t in (S.APPROVED, S.REJECTED)
        ),
        (A.REVIEW, S.IN_REVIEW, S.APPROVED),
        (A.REVIEW, S.IN_REVIEW, S.REJECTED),
    }


async def test_the_full_journey_with_ops_review(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    user = await create_user(client, partner)
    uid = user["id"]
    submit = await client.post(f"/v1/users/{uid}/kyc/submit", headers=partner.headers)
    assert (submit.status_code, submit.json()["code"]) == (409, "INVALID_KYC_TRANSITION")

    await client.put(f"/v1/users/{uid}/kyc/personal", json=PERSONAL, headers=partner.headers)
    incomplete = await client.post(f"/v1/users/{uid}/kyc/submit", headers=partner.headers)
    assert (incomplete.status_code, incomplete.json()["code"]) == (422, "KYC_INCOMPLETE")
    assert {e["field"] for e in incomplete.json()["errors"]} == {
        "addresses",
        "documents.identity",
        "documents.selfie",
    }

    await complete_kyc(client, partner, uid)
    submitted = await client.post(f"/v1/users/{uid}/kyc/submit", headers=partner.headers)
    assert submitted.json()["data"]["status"] == "IN_REVIEW"
    locked = await client.put(
        f"/v1/users/{uid}/kyc/personal", json=PERSONAL, headers=partner.headers
    )
    assert (locked.status_code, locked.json()["code"]) == (409, "KYC_LOCKED")
    assert (await upload(client, partner, uid, "selfie")).json()["code"] == "KYC_LOCKED"

    token = (await make_admin(app, partner, "manager")).token
    queue = await client.get("/v1/admin/kyc-reviews", headers=bearer(token))
    assert [u["id"] for u in queue.json()["data"]] == [uid]
    rejected = await client.post(
        f"/v1/admin/kyc-reviews/{uid}/reject",
        json={"reason": "blurry passport"},
        headers=bearer(token),
    )
    assert rejected.json()["data"]["status"] == "REJECTED"
    assert rejected.json()["data"]["reason"] == "blurry passport"

    # Resubmission: new data reopens it as PENDING.
    again = await upload(client, partner, uid, "passport", "front")
    assert again.status_code == 201
    kyc = (await client.get(f"/v1/users/{uid}/kyc", headers=partner.headers)).json()["data"]
    assert kyc["status"] == "PENDING"
    await client.post(f"/v1/users/{uid}/kyc/submit", headers=partner.headers)
    approved = await client.post(
        f"/v1/admin/kyc-reviews/{uid}/approve", json={}, headers=bearer(token)
    )
    assert approved.json()["data"]["status"] == "APPROVED"
    assert [(h["from_status"], h["to_status"]) for h in approved.json()["data"]["history"]] == [
        ("NOT_STARTED", "PENDING"),
        ("PENDING", "IN_REVIEW"),
        ("IN_REVIEW", "REJECTED"),
        ("REJECTED", "PENDING"),
        ("PENDING", "IN_REVIEW"),
        ("IN_REVIEW", "APPROVED"),
    ]
    events = (
        await session.scalars(
            select(Event)
            .where(Event.type == "kyc.status_changed", Event.object_id == uid)
            .order_by(Event.id)
        )
    ).all()
    assert [e.data["to_status"] for e in events] == [
        "PENDING",
        "IN_REVIEW",
        "REJECTED",
        "PENDING",
        "IN_REVIEW",
        "APPROVED",
    ]
    # Approved is final for both paths.
    assert (
        await client.post(f"/v1/admin/kyc-reviews/{uid}/reject", json={}, headers=bearer(token))
    ).status_code == 409
    decision = await client.post(
        f"/v1/users/{uid}/kyc/decision", json={"decision": "REJECTED"}, headers=partner.headers
    )
    assert decision.status_code == 409


async def test_partner_decides_its_own_kyc(client: AsyncClient, partner: Partner) -> None:
    user = await create_user(client, partner)
    decided = await client.post(
        f"/v1/users/{user['id']}/kyc/decision",
        json={"decision": "APPROVED", "reason": "verified in our app"},
        headers=partner.headers,
    )
    assert decided.status_code == 200
    assert decided.json()["data"]["status"] == "APPROVED"
    assert decided.json()["data"]["history"][0]["actor_type"] == "partner"


async def test_an_ops_decision_needs_no_body(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    """Approve and reject have nothing required to send: a bare POST is a complete request."""
    token = (await make_admin(app, partner, "manager")).token
    decided = {}
    for action in ("approve", "reject"):
        uid = (await create_user(client, partner))["id"]
        await complete_kyc(client, partner, uid)
        await client.post(f"/v1/users/{uid}/kyc/submit", headers=partner.headers)
        answer = await client.post(f"/v1/admin/kyc-reviews/{uid}/{action}", headers=bearer(token))
        assert answer.status_code == 200, answer.text
        decided[action] = answer.json()["data"]["status"]
    assert decided == {"approve": "APPROVED", "reject": "REJECTED"}


async def test_ops_review_needs_the_right_role_and_state(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    user = await create_user(client, partner)
    employee = (await make_admin(app, partner, "employee")).token
    admin = (await make_admin(app, partner, "admin")).token
    refused = await client.post(
        f"/v1/admin/kyc-reviews/{user['id']}/approve", json={}, headers=bearer(employee)
    )
    assert refused.status_code == 403
    not_in_review = await client.post(
        f"/v1/admin/kyc-reviews/{user['id']}/approve", json={}, headers=bearer(admin)
    )
    assert (not_in_review.status_code, not_in_review.json()["code"]) == (
        409,
        "INVALID_KYC_TRANSITION",
    )
    assert (
        await client.post(
            f"/v1/users/{user['id']}/kyc/decision",
            json={"decision": "APPROVED"},
            headers=bearer(admin),
        )
    ).status_code == 403


async def test_document_limits(
    client: AsyncClient, partner: Partner, app: FastAPI, session: AsyncSession
) -> None:
    uid = (await create_user(client, partner))["id"]
    ok = await upload(client, partner, uid, "national_id", "front", PDF, "application/pdf")
    assert ok.status_code == 201, ok.text
    document = ok.json()["data"]
    import hashlib

    assert document["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert document["size_bytes"] == len(PDF)

    too_big = await upload(
        client, partner, uid, "selfie", None, JPEG + b"\0" * (10 * 1024 * 1024), "image/jpeg"
    )
    assert (too_big.status_code, too_big.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")
    gif = await upload(client, partner, uid, "selfie", None, b"GIF89a....", "image/gif")
    assert (gif.status_code, gif.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    lying = await upload(client, partner, uid, "selfie", None, PNG, "image/jpeg")
    assert (lying.status_code, lying.json()["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
    for bad in ({"type": "tax_return"}, {"type": "passport", "side": "middle"}):
        response = await upload(client, partner, uid, bad["type"], bad.get("side"))
        assert response.status_code == 422, bad
    empty = await upload(client, partner, uid, "selfie", None, b"", "image/jpeg")
    assert empty.status_code in (415, 422)

    # The bytes are in document storage, encrypted, not in the row.
    row = await session.scalar(select(KycDocument).where(KycDocument.id == document["id"]))
    assert row is not None
    storage = app.state.document_storage
    assert await storage.get(row.storage_key) == PDF
    on_disk = Path(storage.root, row.storage_key).read_bytes()
    assert PDF not in on_disk
    assert oct(Path(storage.root, row.storage_key).stat().st_mode & 0o777) == "0o600"


async def test_addresses_are_validated(client: AsyncClient, partner: Partner) -> None:
    uid = (await create_user(client, partner))["id"]
    created = await client.post(
        f"/v1/users/{uid}/kyc/addresses", json=ADDRESS, headers=partner.headers
    )
    assert created.json()["data"]["state"] == "PL-14"
    assert created.json()["data"]["country"] == "PL"
    for bad, field in (
        ({"country": "XX"}, "country"),
        ({"state": "US-CA"}, "state"),
        ({"state": "99"}, "state"),
    ):
        response = await client.post(
            f"/v1/users/{uid}/kyc/addresses", json={**ADDRESS, **bad}, headers=partner.headers
        )
        assert response.status_code == 422, bad
        assert response.json()["errors"][0]["field"] == field
    patched = await client.patch(
        f"/v1/users/{uid}/kyc/addresses/{created.json()['data']['id']}",
        json={"type": "MAILING", "city": "Kraków", "state": "PL-12"},
        headers=partner.headers,
    )
    assert (patched.json()["data"]["type"], patched.json()["data"]["state"]) == ("MAILING", "PL-12")


async def test_kyb_journey(
    client: AsyncClient, app: FastAPI, partner: Partner, session: AsyncSession
) -> None:
    body = {
        "legal_name": "Acme Sp. z o.o.",
        "registration_number": "0000123456",
        "country": "PL",
        "address_line1": "ul. Prosta 1",
        "city": "Warszawa",
    }
    created = await client.post("/v1/corporations", json=body, headers=partner.headers)
    assert created.status_code == 201
    corp = created.json()["data"]
    assert corp["kyb_status"] == "NOT_STARTED"
    duplicate = await client.post("/v1/corporations", json=body, headers=partner.headers)
    assert duplicate.json()["code"] == "ALREADY_EXISTS"

    async def upload_kyb(kind: str):  # type: ignore[no-untyped-def]
        return await client.post(
            f"/v1/corporations/{corp['id']}/kyb/documents",
            data={"type": kind},
            files={"file": ("doc.pdf", PDF, "application/pdf")},
            headers=partner.headers,
        )

    assert (await upload_kyb("certificate_of_incorporation")).status_code == 201
    incomplete = await client.post(
        f"/v1/corporations/{corp['id']}/kyb/submit", headers=partner.headers
    )
    assert [e["field"] for e in incomplete.json()["errors"]] == ["documents.proof_of_address"]
    assert (await upload_kyb("proof_of_address")).status_code == 201
    submitted = await client.post(
        f"/v1/corporations/{corp['id']}/kyb/submit", headers=partner.headers
    )
    assert submitted.json()["data"]["status"] == "IN_REVIEW"

    token = (await make_admin(app, partner, "admin")).token
    queue = await client.get("/v1/admin/kyb-reviews", headers=bearer(token))
    assert [c["id"] for c in queue.json()["data"]] == [corp["id"]]
    approved = await client.post(
        f"/v1/admin/kyb-reviews/{corp['id']}/approve", json={}, headers=bearer(token)
    )
    assert approved.json()["data"]["status"] == "APPROVED"
    event = await session.scalar(
        select(Event).where(Event.type == "kyb.status_changed").order_by(Event.id.desc())
    )
    assert event is not None
    assert event.data["to_status"] == "APPROVED"

    employee = await create_user(client, partner)
    linked = await client.post(
        f"/v1/corporations/{corp['id']}/employees",
        json={"user_id": employee["id"], "title": "CFO"},
        headers=partner.headers,
    )
    assert linked.status_code == 201
    twice = await client.post(
        f"/v1/corporations/{corp['id']}/employees",
        json={"user_id": employee["id"]},
        headers=partner.headers,
    )
    assert twice.json()["code"] == "ALREADY_EXISTS"


async def test_corporations_stay_in_their_program(
    client: AsyncClient, partner: Partner, other_partner: Partner
) -> None:
    corp = (
        await client.post(
            "/v1/corporations",
            json={
                "legal_name": "A",
                "registration_number": "1",
                "country": "DE",
                "address_line1": "x",
                "city": "Berlin",
            },
            headers=partner.headers,
        )
    ).json()["data"]
    theirs = await create_user(client, other_partner)
    assert (
        await client.get(f"/v1/corporations/{corp['id']}", headers=other_partner.headers)
    ).status_code == 404
    cross = await client.post(
        f"/v1/corporations/{corp['id']}/employees",
        json={"user_id": theirs["id"]},
        headers=partner.headers,
    )
    assert cross.status_code == 404
