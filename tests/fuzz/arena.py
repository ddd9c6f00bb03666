"""A populated cardcore for the fuzz and id-matrix tests: two programs with one of everything.

The arena runs on an event loop of its own, on one connection whose transaction is rolled back at
the end, so nothing it makes is ever committed for real (as in tests/conftest.py). The world is
made once through the API; every request a test sends afterwards runs in a savepoint that is
rolled back when it has been answered, so each one finds the same world and none sees another's
writes.

Program A and program B are made the same way. Program A has two cardholders (1 and 2), each with
a balance, a card and a session, so a cardholder's routes can be tried with the other's ids.
"""

import asyncio
import itertools
from collections.abc import Coroutine
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from cardcore.app import create_app
from cardcore.config import Settings
from cardcore.db import create_engine
from cardcore.kit.crypto import generate_key_spec
from cardcore.models.programs import ProgramMode
from tests.auth.helpers import create_credential, partner_token
from tests.customers.helpers import JPEG, PDF, PNG
from tests.factories import (
    ADDRESS,
    DELIVERY,
    PERSONAL,
    PRODUCT,
    Partner,
    bearer,
    fund_partner,
    make_admin,
    make_partner,
)
from tests.harness import CVK_A, CVK_B

BASE_URL = "http://cardcore"
# The key a caller asks for encrypted answers with (routes that require JWE).
CALLER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROLES = ("admin", "manager", "employee")
_phones = itertools.count(1)


@dataclass
class Cardholder:
    user_id: str
    balance_id: str
    card_id: str
    session_token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.session_token)


@dataclass
class ProgramWorld:
    """One program's objects. `ids` maps a kind of object (named as the path parameters name it,
    without `_id`) to the id of one such object."""

    name: str
    partner: Partner
    ids: dict[str, str] = field(default_factory=dict)
    credentials: dict[str, dict[str, str]] = field(default_factory=dict)
    cardholders: list[Cardholder] = field(default_factory=list)
    # A JWS credential's `auth_id` and `secret`: its requests are signed one by one.
    signer: dict[str, str] = field(default_factory=dict)


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document, read from an app built for that alone: no database, nothing written
    to disk, so test collection can enumerate the operations before any database exists."""
    return documented_app().openapi()


def documented_app() -> FastAPI:
    """An app for reading the OpenAPI document only."""
    settings = Settings(
        database_url="postgresql+asyncpg://unused/unused",
        master_keys=generate_key_spec("openapi"),
        data_dir=Path("/nonexistent/cardcore"),
        cvk_a=CVK_A,
        cvk_b=CVK_B,
    )
    return create_app(settings, sessionmaker=async_sessionmaker())


class Arena:
    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.settings = settings
        self.engine: AsyncEngine
        self.connection: AsyncConnection
        self.app: FastAPI
        self.client: AsyncClient
        self.programs: dict[str, ProgramWorld] = {}

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def open(self) -> None:
        self.run(self._open())

    async def _open(self) -> None:
        self.engine = create_engine(self.settings.database_url or "", self.settings)
        self.connection = await self.engine.connect()
        self.transaction = await self.connection.begin()
        maker = async_sessionmaker(
            bind=self.connection,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
            autoflush=False,
        )
        self.sessionmaker = maker
        self.app = create_app(self.settings, sessionmaker=maker)
        # A 500 must come back as an answer the checks can judge, not as an exception here.
        self.client = AsyncClient(
            transport=ASGITransport(app=self.app, raise_app_exceptions=False), base_url=BASE_URL
        )
        async with maker() as session:
            for name in ("A", "B"):
                self.programs[name] = await build_program(self.app, self.client, session, name)
        # Keys the app makes on first use (JWE, token signing) are made now, outside any
        # savepoint, so a rolled-back request never leaves the app holding a key that is gone.
        assert (await self.client.get("/v1/encryption/public-key")).status_code == 200

    def close(self) -> None:
        try:
            self.run(self.client.aclose())
            self.run(self.transaction.rollback())
            self.run(self.connection.close())
            self.run(self.engine.dispose())
        finally:
            self.loop.close()

    async def isolated(self, request: Coroutine[Any, Any, Response]) -> Response:
        """Send one request in a savepoint and undo whatever it did."""
        savepoint = await self.connection.begin_nested()
        try:
            return await request
        finally:
            await savepoint.rollback()

    @property
    def a(self) -> ProgramWorld:
        return self.programs["A"]

    @property
    def b(self) -> ProgramWorld:
        return self.programs["B"]


def _data(response: Response, status: int = 201) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json()["data"]


async def _cardholder(
    client: AsyncClient, partner: Partner, product_id: str, world: ProgramWorld
) -> Cardholder:
    """A user with KYC approved, a funded balance, a virtual card and a cardholder session."""
    headers = partner.headers
    user = _data(
        await client.post(
            "/v1/users", json={"phone": f"+4860100{next(_phones):04d}"}, headers=headers
        )
    )
    _data(
        await client.put(f"/v1/users/{user['id']}/kyc/personal", json=PERSONAL, headers=headers),
        200,
    )
    address = _data(
        await client.post(f"/v1/users/{user['id']}/kyc/addresses", json=ADDRESS, headers=headers)
    )
    world.ids.setdefault("address", address["id"])
    _data(
        await client.post(
            f"/v1/users/{user['id']}/kyc/decision",
            json={"decision": "APPROVED"},
            headers=headers,
        ),
        200,
    )
    balance = _data(
        await client.post(
            "/v1/balances", json={"user_id": user["id"], "currency": "EUR"}, headers=headers
        )
    )
    _data(
        await client.post(
            f"/v1/balances/{balance['id']}/reload",
            json={"amount": 50_000, "currency": "EUR"},
            headers=headers,
        ),
        200,
    )
    card = _data(
        await client.post(
            "/v1/cards",
            json={
                "type": "VIRTUAL",
                "product_id": product_id,
                "user_id": user["id"],
                "balance_id": balance["id"],
            },
            headers=headers,
        )
    )
    session = _data(await client.post(f"/v1/users/{user['id']}/sessions", json={}, headers=headers))
    return Cardholder(
        user_id=user["id"],
        balance_id=balance["id"],
        card_id=card["id"],
        session_token=session["access_token"],
    )


async def _upload(
    client: AsyncClient, path: str, headers: dict[str, str], type_: str, **extra: Any
) -> dict[str, Any]:
    content, media = (PNG, "image/png") if type_ == "selfie" else (JPEG, "image/jpeg")
    if type_ in ("certificate_of_incorporation", "proof_of_address"):
        content, media = PDF, "application/pdf"
    return _data(  # type: ignore[no-any-return]
        await client.post(
            path,
            data={"type": type_, **extra},
            files={"file": ("doc", content, media)},
            headers=headers,
        )
    )


async def build_program(
    app: FastAPI, client: AsyncClient, session: AsyncSession, name: str
) -> ProgramWorld:
    """One of every kind of object a path can name, made through the API where it can be."""
    # Test programs, so that the simulation routes (test mode only) are fuzzed too.
    partner = await make_partner(session, f"Program {name}", ProgramMode.TEST)
    world = ProgramWorld(name=name, partner=partner)
    ids = world.ids
    headers = partner.headers
    credit = await fund_partner(session, partner, 1_000_000)
    ids["partner_balance"] = credit.id

    # Ops staff of every role; the employee is the one whose account the matrix points at.
    tokens = {}
    for role in ROLES:
        admin = await make_admin(app, partner, role)
        tokens[role] = admin.token
        if role == "employee":
            ids["admin"] = admin.id
    ops = bearer(tokens["admin"])

    schedule = _data(
        await client.post(
            "/v1/admin/fee-schedules",
            json={"fees": [{"type": "CARD_ISSUANCE", "prices": {"EUR": {"fixed": 100}}}]},
            headers=ops,
        )
    )
    ids["schedule"] = schedule["id"]
    product = _data(await client.post("/v1/admin/products", json=PRODUCT, headers=ops))
    ids["product"] = product["id"]
    network = _data(
        await client.post("/v1/admin/network-keys", json={"name": "processor"}, headers=ops)
    )

    token = await partner_token(client, partner)
    world.signer = await create_credential(client, partner, "jws")
    ids["credential"] = token["client_id"]
    ids["key"] = _data(await client.post("/v1/api-keys", json={"name": "spare"}, headers=headers))[
        "id"
    ]

    holders = [await _cardholder(client, partner, product["id"], world) for _ in range(2)]
    world.cardholders = holders
    first = holders[0]
    ids.update(user=first.user_id, balance=first.balance_id, card=first.card_id)
    fee = (await client.get("/v1/fees", params={"limit": 1}, headers=headers)).json()["data"]
    ids["fee"] = fee[0]["id"]

    # A second card of the first cardholder carries an open report and a physical request.
    reported = _data(
        await client.post(
            "/v1/cards",
            json={
                "type": "VIRTUAL",
                "product_id": product["id"],
                "user_id": first.user_id,
                "balance_id": first.balance_id,
            },
            headers=headers,
        )
    )
    ids["report"] = _data(
        await client.post(
            f"/v1/cards/{reported['id']}/reports", json={"reason": "DAMAGED"}, headers=headers
        )
    )["id"]
    ids["physical_request"] = _data(
        await client.post(
            f"/v1/cards/{first.card_id}/physical-requests",
            json={"embossing_name": "ZOFIA KOWALSKA", "delivery_address": DELIVERY},
            headers=headers,
        )
    )["id"]
    ids["card_request"] = _data(
        await client.post(
            "/v1/cards",
            params={"async": "true"},
            json={
                "type": "VIRTUAL",
                "product_id": product["id"],
                "user_id": first.user_id,
                "balance_id": first.balance_id,
            },
            headers=headers,
        ),
        202,
    )["id"]

    authorization = await client.post(
        "/v1/network/authorizations",
        json={
            "card_id": first.card_id,
            "amount": 1_000,
            "currency": "EUR",
            "merchant": {"name": "Shop", "mcc": "5411", "country": "PL"},
            "channel": "POS",
            "entry_mode": "CHIP",
            "network": {"network_transaction_id": f"{name}-auth-1"},
        },
        headers={"X-API-Key": network["secret"]},
    )
    assert authorization.status_code == 200, authorization.text
    assert authorization.json()["approved"] is True, authorization.text
    ids["transaction"] = authorization.json()["authorization_id"]

    contact = _data(
        await client.post(
            "/v1/payment-contacts",
            json={
                "user_id": first.user_id,
                "iban": "PL61109010140000071219812874",
                "holder_name": "Zofia Kowalska",
            },
            headers=headers,
        )
    )
    ids["payment_contact"] = contact["id"]
    ids["transfer"] = _data(
        await client.post(
            "/v1/transfers",
            json={
                "from_balance_id": first.balance_id,
                "payment_contact_id": contact["id"],
                "amount": 500,
                "currency": "EUR",
            },
            headers=headers,
        )
    )["id"]

    corporation = _data(
        await client.post(
            "/v1/corporations",
            json={
                "legal_name": f"Acme {name} sp. z o.o.",
                "registration_number": f"KRS-{name}-0001",
                "country": "PL",
                "address_line1": "ul. Prosta 1",
                "city": "Warszawa",
            },
            headers=headers,
        )
    )
    ids["corporation"] = corporation["id"]
    corporate = f"/v1/corporations/{corporation['id']}"
    for type_ in ("certificate_of_incorporation", "proof_of_address"):
        await _upload(client, f"{corporate}/kyb/documents", headers, type_)
    _data(await client.post(f"{corporate}/kyb/submit", headers=headers), 200)

    # A third user waits in the KYC review queue, with everything a review needs.
    queued = _data(await client.post("/v1/users", json={}, headers=headers))
    user_path = f"/v1/users/{queued['id']}"
    _data(await client.put(f"{user_path}/kyc/personal", json=PERSONAL, headers=headers), 200)
    _data(await client.post(f"{user_path}/kyc/addresses", json=ADDRESS, headers=headers))
    await _upload(client, f"{user_path}/kyc/documents", headers, "passport", side="front")
    await _upload(client, f"{user_path}/kyc/documents", headers, "selfie")
    _data(await client.post(f"{user_path}/kyc/submit", headers=headers), 200)
    ids["review_user"] = queued["id"]

    webhook = _data(
        await client.post(
            "/v1/webhooks",
            json={"url": "https://partner.example.com/cardcore", "event_types": ["card.*"]},
            headers=headers,
        )
    )
    ids["webhook"] = webhook["id"]
    ids["message"] = _data(
        await client.post(f"/v1/webhooks/{webhook['id']}/test", headers=headers), 202
    )["id"]
    events = (await client.get("/v1/events", params={"limit": 1}, headers=headers)).json()
    ids["event"] = events["data"][0]["id"]

    world.credentials = {
        "partner key": headers,
        "partner token": bearer(token["access_token"]),
        "partner X-Auth-Token": {"X-Auth-Token": token["access_token"]},
        # Signed per request (tests/fuzz/test_schemathesis.py): no standing header.
        "partner JWS": {},
        "network key": {"X-API-Key": network["secret"]},
        "test-mode key": headers,
        "cardholder": first.headers,
        "cardholder X-Auth-Token": {"X-Auth-Token": first.session_token},
        **{f"ops {role}": bearer(tokens[role]) for role in ROLES},
    }
    await session.commit()
    return world
