"""The state tests start from, made through cardcore's services, typed.

A test that is about a route sends that route its requests; what it needs to exist first (a
funded program, an admin, a card product, a cardholder with a balance, a card, the processor's
network key) comes from here, made by the same service functions the routes call, in a session
of the app's own sessionmaker (so the test's `session` holds no copy of it), and committed. Each
factory returns a frozen dataclass of what the test needs to name: ids, a secret, the headers
that carry it.

`make_world` is what most tests of cards and their money start from (the `world` fixture in
conftest.py), `new_world` the same on a program of its own; `make_card_program` is a world
without the cards and the network key. The smaller factories they are made of serve a test that
needs one thing more (another cardholder, an admin of another role, a second product).

Every factory but two takes the app: it acts as the app does, with the app's services. The two
that need none of them, `make_partner` and `fund_partner`, take a session.

Values sent as request bodies (PRODUCT, PERSONAL, ADDRESS, DELIVERY) live here too, so a test
that creates the same thing through the API sends what the factories make.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cardcore.auth import service as auth
from cardcore.balances import service as balances
from cardcore.cards import service as cards
from cardcore.cards.schemas import CardCreate, ProductCreate
from cardcore.config import Settings
from cardcore.customers import service as customers
from cardcore.customers.schemas import PersonalInfoIn
from cardcore.customers.verification import Action
from cardcore.kit.crypto import Keyring
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.kit.tokens import TokenKeys
from cardcore.models import Balance, PartnerBalance, ProgramMode
from cardcore.programs import service as programs

# -- request bodies ------------------------------------------------------------------------------

PRODUCT: dict[str, Any] = {
    "name": "Classic",
    "network": "VISA",
    "bin": "45717360",
    "form_factors": ["VIRTUAL", "PHYSICAL"],
    "kind": "DEBIT",
    "currency": "EUR",
}
PERSONAL: dict[str, Any] = {
    "first_name": "Zofia",
    "middle_name": "Maria",
    "last_name": "Kowalska",
    "date_of_birth": "1990-04-01",
    "nationality": "PL",
    "national_id_type": "NATIONAL_ID",
    "national_id_number": "ABC 123456",
}
ADDRESS: dict[str, Any] = {
    "type": "RESIDENTIAL",
    "line1": "ul. Marszałkowska 1",
    "city": "Warszawa",
    "postal_code": "00-001",
    "state": "14",
    "country": "pl",
}
DELIVERY: dict[str, Any] = {k: v for k, v in ADDRESS.items() if k != "type"}
PASSWORD = "correct horse battery"  # every admin's the factories make


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- what the factories make ---------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    """A program and one of its partner API keys."""

    program_id: str
    api_key: str
    api_key_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.api_key}

    @property
    def principal(self) -> Principal:
        """The partner as its API key's requests act."""
        return Principal(
            PrincipalKind.PARTNER,
            program_id=self.program_id,
            actor_id=self.api_key_id,
            channel="api_key",
        )


@dataclass(frozen=True)
class Admin:
    """An ops user of a program, logged in."""

    id: str
    role: str
    email: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass(frozen=True)
class Product:
    id: str


@dataclass(frozen=True)
class Cardholder:
    """A user with personal information; approved, with a EUR balance, unless made otherwise."""

    user_id: str
    balance_id: str | None


@dataclass(frozen=True)
class Card:
    id: str
    balance_id: str
    user_id: str


@dataclass(frozen=True)
class NetworkKey:
    """The card processor's API key."""

    id: str
    secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.secret}


@dataclass(frozen=True)
class CardProgram:
    """A program set up to issue cards: 10,000.00 EUR on its CREDIT partner balance, an admin,
    a card product (PRODUCT) and one approved cardholder with an empty EUR balance."""

    partner: Partner
    admin: Admin
    product: Product
    holder: Cardholder


@dataclass(frozen=True)
class World(CardProgram):
    """A card program whose processor holds a network key, and cards to authorize with: the
    first on the program's holder's balance, each other on a new cardholder's own."""

    network: NetworkKey
    cards: tuple[Card, ...] = field(default=())

    @property
    def card(self) -> Card:
        assert self.cards, "this world was made without a card"
        return self.cards[0]


# -- the factories -------------------------------------------------------------------------------


def _sessionmaker(app: FastAPI) -> async_sessionmaker[AsyncSession]:
    # What create_app keeps on app.state (kit/app_state.py and cards/dependencies.py say which).
    return cast(async_sessionmaker[AsyncSession], app.state.sessionmaker)


def _card_services(app: FastAPI) -> cards.CardServices:
    return cast(cards.CardServices, app.state.card_services)


async def make_partner(
    session: AsyncSession, name: str = "Test Program", mode: ProgramMode = ProgramMode.LIVE
) -> Partner:
    """A program and a partner API key. It needs nothing of an app, so it takes a session: a test
    without one (a CLI run, a worker process) makes its program with it too."""
    program = await programs.create_program(session, name=name, currencies=["EUR"], mode=mode)
    key, secret = await programs.create_api_key(session, program_id=program.id, name="test")
    await session.commit()
    return Partner(program_id=program.id, api_key=secret, api_key_id=key.id)


async def fund_partner(
    session: AsyncSession,
    partner: Partner,
    amount: int,
    currency: str = "EUR",
    threshold: int | None = None,
) -> PartnerBalance:
    """A CREDIT partner balance holding `amount`: what reloads and issuance fees draw on."""
    credit = await balances.create_partner_balance(
        session,
        program_id=partner.program_id,
        type="CREDIT",
        currency=currency,
        low_balance_threshold=threshold,
    )
    if amount:
        await balances.reload_partner_balance(session, credit, amount=amount, reference="wire 1")
    await session.commit()
    return credit


async def make_admin(app: FastAPI, partner: Partner, role: str = "admin") -> Admin:
    """An ops user `<role>@example.com` with PASSWORD, and a token from logging them in."""
    email = f"{role}@example.com"
    async with _sessionmaker(app)() as session:
        admin = await programs.create_admin_user(
            session, program_id=partner.program_id, email=email, password=PASSWORD, role=role
        )
        await session.commit()
        _, token = await auth.admin_login(
            session,
            cast(TokenKeys, app.state.token_keys),
            cast(Settings, app.state.settings),
            program_id=partner.program_id,
            email=email,
            password=PASSWORD,
        )
        await session.commit()
    return Admin(id=admin.id, role=role, email=email, token=token)


async def make_product(app: FastAPI, partner: Partner, **overrides: Any) -> Product:
    """A card product: PRODUCT, with `overrides`."""
    values = ProductCreate.model_validate({**PRODUCT, **overrides}).model_dump()
    async with _sessionmaker(app)() as session:
        product = await cards.create_product(session, program_id=partner.program_id, values=values)
        await session.commit()
    return Product(id=product.id)


async def make_user(app: FastAPI, partner: Partner, *, closed: bool = False) -> str:
    """A bare user: no personal information, KYC not started. Its id."""
    async with _sessionmaker(app)() as session:
        user = await customers.create_user(
            session, program_id=partner.program_id, external_reference=None, email=None, phone=None
        )
        if closed:
            await customers.close_user(session, user)
        await session.commit()
    return str(user.id)


async def make_cardholder(
    app: FastAPI, partner: Partner, *, approve: bool = True, phone: str = "+48601234567"
) -> Cardholder:
    """A user with PERSONAL as their personal information; unless `approve` is False, approved
    by the partner's own KYC decision and given an empty EUR balance."""
    personal = customers.PersonalInfo(**PersonalInfoIn.model_validate(PERSONAL).model_dump())
    async with _sessionmaker(app)() as session:
        user = await customers.create_user(
            session,
            program_id=partner.program_id,
            external_reference=None,
            email=None,
            phone=phone,
        )
        keyring = cast(Keyring, app.state.keyring)
        await customers.set_personal_info(session, keyring, user, personal, partner.principal)
        balance_id = None
        if approve:
            await customers.decide(
                session,
                user,
                approved=True,
                reason=None,
                principal=partner.principal,
                action=Action.PARTNER_DECISION,
            )
            balance = await balances.create_balance(session, owner=user, currency="EUR")
            balance_id = balance.id
        await session.commit()
    return Cardholder(user_id=user.id, balance_id=balance_id)


async def fund_balance(app: FastAPI, balance_id: str, amount: int) -> None:
    """A reload of `amount` EUR from the program's CREDIT partner balance."""
    async with _sessionmaker(app)() as session:
        balance = await session.scalar(
            select(Balance).where(Balance.id == balance_id).with_for_update()
        )
        assert balance is not None, balance_id
        await balances.reload_balance(session, balance, amount=amount, currency="EUR")
        await session.commit()


async def make_card(
    app: FastAPI,
    partner: Partner,
    product: Product,
    holder: Cardholder,
    **request: Any,
) -> Card:
    """A card of `product` for `holder` on their balance: VIRTUAL unless `request` (the fields
    of POST /v1/cards) says otherwise."""
    body = CardCreate.model_validate(
        {
            "type": "VIRTUAL",
            "product_id": product.id,
            "user_id": holder.user_id,
            "balance_id": holder.balance_id,
            **request,
        }
    ).model_dump()
    if body["delivery_address"] is None:
        body.pop("delivery_address")
    async with _sessionmaker(app)() as session:
        card = await cards.issue_card(
            session,
            _card_services(app),
            program_id=partner.program_id,
            request=cards.IssueRequest(**body),
        )
        await session.commit()
    return Card(id=card.id, balance_id=card.balance_id, user_id=holder.user_id)


async def make_network_key(app: FastAPI, partner: Partner) -> NetworkKey:
    async with _sessionmaker(app)() as session:
        key, secret = await programs.create_api_key(
            session, program_id=partner.program_id, name="processor", kind="network"
        )
        await session.commit()
    return NetworkKey(id=key.id, secret=secret)


async def make_card_program(app: FastAPI, partner: Partner) -> CardProgram:
    """See CardProgram."""
    async with _sessionmaker(app)() as session:
        await fund_partner(session, partner, 1_000_000)
    return CardProgram(
        partner=partner,
        admin=await make_admin(app, partner),
        product=await make_product(app, partner),
        holder=await make_cardholder(app, partner),
    )


async def funded_card(
    app: FastAPI, program: CardProgram, amount: int, *, phone: str = "+48601230000"
) -> Card:
    """A new cardholder, their balance reloaded by `amount`, and a virtual card on it."""
    holder = await make_cardholder(app, program.partner, phone=phone)
    assert holder.balance_id is not None
    if amount:
        await fund_balance(app, holder.balance_id, amount)
    return await make_card(app, program.partner, program.product, holder)


async def make_world(app: FastAPI, partner: Partner, funding: Sequence[int] = (10_000,)) -> World:
    """A card program, a network key, and one virtual card per amount in `funding`, each on a
    balance reloaded by that amount: the first on the program's holder's balance, each other on
    a new cardholder's. By default one card on 100.00 EUR."""
    program = await make_card_program(app, partner)
    assert program.holder.balance_id is not None
    made: list[Card] = []
    for n, amount in enumerate(funding):
        if n == 0:
            if amount:
                await fund_balance(app, program.holder.balance_id, amount)
            made.append(await make_card(app, partner, program.product, program.holder))
        else:
            made.append(await funded_card(app, program, amount, phone=f"+4860123{n:04d}"))
    return World(
        partner=program.partner,
        admin=program.admin,
        product=program.product,
        holder=program.holder,
        network=await make_network_key(app, partner),
        cards=tuple(made),
    )


async def new_world(
    app: FastAPI,
    name: str,
    funding: Sequence[int] = (10_000,),
    mode: ProgramMode = ProgramMode.LIVE,
) -> World:
    """make_world on a new program of its own, named `name`: for a test with no `partner`
    fixture (one on a committed app, or a second program beside the fixture's)."""
    async with _sessionmaker(app)() as session:
        partner = await make_partner(session, name, mode)
    return await make_world(app, partner, funding)
