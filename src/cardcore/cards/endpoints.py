"""Card products and cards: issuance, reading, reveal, PIN, CVV reset, the physical journey,
activation and the cardholder check."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Annotated

from fastapi import Body, Path, Query, Security, status
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import service, zone_pin_keys
from cardcore.cards.dependencies import CardServicer, CardServicesDep
from cardcore.cards.jobs import ISSUE_CARD
from cardcore.cards.repository import (
    CardRepository,
    ProductRepository,
    RequestRepository,
    load_card,
)
from cardcore.cards.schemas import (
    ActivateByPan,
    CardCreate,
    CardId,
    CardOut,
    CardRequestOut,
    DeliveryIn,
    HolderCheckIn,
    HolderCheckOut,
    ManufacturingIn,
    PinIn,
    ProductCreate,
    ProductOut,
    RevealIn,
    RevealOut,
    ZonePinKeyIn,
    ZonePinKeyOut,
)
from cardcore.cards.service import CardServices, IssueRequest
from cardcore.customers.repository import UserRepository
from cardcore.kit.access import Cardholder, Partner, partner_or_admin, require_admin
from cardcore.kit.app_state import KeyringDep
from cardcore.kit.envelope import ListMeta, Many, One
from cardcore.kit.errors import NotFound, error_responses
from cardcore.kit.filters import id_filter
from cardcore.kit.jobs import enqueue
from cardcore.kit.pagination import Pagination
from cardcore.kit.principals import Principal
from cardcore.kit.routing import encryption, router
from cardcore.kit.session import DbSession
from cardcore.models import Card, CardRequest, CardStatus, FulfillmentStatus, ZonePinKey
from cardcore.models.ids import new_id

# The partner, or ops staff whose role the matrix allows ("cards.read").
CardReader = Annotated[Principal, Security(partner_or_admin("cards.read"))]

routes = router(
    tags=["cards"],
    encryption="optional",
)
admin_routes = router(
    tags=["admin"],
    encryption="optional",
)

Creator = Annotated[Principal, Security(partner_or_admin("cards.create"))]
ProductManager = Annotated[Principal, Security(require_admin("products.manage"))]
ZpkManager = Annotated[Principal, Security(require_admin("zone_pin_keys.manage"))]
ZpkReader = Annotated[Principal, Security(require_admin("zone_pin_keys.read"))]
CARD_ERRORS = error_responses("NOT_FOUND")
# No body asks for every field (and lets a body-less call ask only for an encrypted answer).
RevealOptions = Annotated[RevealIn, Body(default_factory=RevealIn)]


# -- products ------------------------------------------------------------------------------------


@admin_routes.post(
    "/v1/admin/products",
    summary="Define a card product (role admin)",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("CURRENCY_NOT_ALLOWED"),
)
async def create_product(
    body: ProductCreate, principal: ProductManager, session: DbSession
) -> One[ProductOut]:
    product = await service.create_product(
        session, program_id=principal.tenant_id, values=body.model_dump()
    )
    await session.refresh(product)
    return One(data=ProductOut.model_validate(product))


@routes.get("/v1/products", summary="The program's card products")
async def list_products(
    principal: Partner, session: DbSession, page: Pagination
) -> Many[ProductOut]:
    repository = ProductRepository(session, principal.tenant_id)
    products, meta = await repository.page(repository.readable(), page)
    return Many(data=[ProductOut.model_validate(p) for p in products], meta=meta)


# -- zone PIN keys -------------------------------------------------------------------------------


def zone_pin_key_out(row: ZonePinKey) -> ZonePinKeyOut:
    return ZonePinKeyOut(
        id=row.id,
        algorithm=row.algorithm,
        key_bits=row.key_bits,
        kcv=row.kcv,
        status=zone_pin_keys.status(row),
        usable_until=row.usable_until,
        created_at=row.created_at,
    )


@admin_routes.post(
    "/v1/admin/zone-pin-keys",
    summary="Install the zone PIN key shared with the card processor (role admin, JWE required)",
    description="The key under which the network sends PIN blocks: TDES for ISO 9564 format 0, "
    "AES for format 4. It replaces the current key, which keeps verifying for "
    "`previous_key_grace_seconds`. The key is stored only wrapped by the master keyring and is "
    "never shown again: answers carry its key check value (`kcv`).",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("ENCRYPTION_REQUIRED"),
    openapi_extra=encryption("required"),
)
async def install_zone_pin_key(
    body: ZonePinKeyIn, principal: ZpkManager, session: DbSession, keyring: KeyringDep
) -> One[ZonePinKeyOut]:
    row = await zone_pin_keys.install(
        session,
        keyring,
        program_id=principal.tenant_id,
        algorithm=body.algorithm,
        key=zone_pin_keys.parse_key(body.algorithm, [body.key]),
        expected_kcv=body.kcv,
        grace=timedelta(seconds=body.previous_key_grace_seconds),
        installed_by=principal.actor_id,
    )
    await session.refresh(row)
    return One(data=zone_pin_key_out(row))


@admin_routes.get(
    "/v1/admin/zone-pin-keys",
    summary="The zone PIN keys that verify PIN blocks now, by check value (admin, manager)",
)
async def list_zone_pin_keys(principal: ZpkReader, session: DbSession) -> Many[ZonePinKeyOut]:
    rows = await zone_pin_keys.listed(session, principal.tenant_id)
    return Many(
        data=[zone_pin_key_out(r) for r in rows],
        meta=ListMeta(next_cursor=None, has_more=False),
    )


# -- issuance ------------------------------------------------------------------------------------


@routes.post(
    "/v1/cards",
    summary="Issue a card (virtual, physical or gift)",
    description="With `?async=true` the answer is 202 and a request to poll at "
    "`GET /v1/requests/{id}`; the worker issues the card. A physical card's `pin` is taken "
    "only in a JWE body.",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=encryption("optional", required_for=["pin"]),
    response_model=One[CardOut],
    responses={
        status.HTTP_202_ACCEPTED: {
            "model": One[CardRequestOut],
            "description": "With `?async=true`: the request to poll at `GET /v1/requests/{id}`.",
        },
        **error_responses(
            "NOT_FOUND",
            "KYC_NOT_APPROVED",
            "FORM_FACTOR_NOT_ALLOWED",
            "EMBOSSING_NAME_NOT_ALLOWED",
            "BALANCE_NOT_ACTIVE",
            "CURRENCY_MISMATCH",
            "BIN_EXHAUSTED",
            "GIFT_LOAD_EXCEEDS_MAX",
            "INSUFFICIENT_PARTNER_FUNDS",
            "PIN_TOO_WEAK",
            "ENCRYPTION_REQUIRED",
        ),
    },
)
async def create_card(
    body: CardCreate,
    principal: Creator,
    session: DbSession,
    services: CardServicesDep,
    run_async: Annotated[bool, Query(alias="async")] = False,
) -> One[CardOut] | JSONResponse:
    values = body.model_dump()
    if values["delivery_address"] is None:
        values.pop("delivery_address")
    issue = IssueRequest(**values)
    if run_async:
        request_id = new_id("req")
        payload = body.model_dump(mode="json")
        if body.pin is not None:
            # The request row waits for the worker: it keeps the PIN's keyed hash, never the PIN.
            payload.update(service.sealed_pin(services, request_id, body.pin))
        card_request = CardRequest(id=request_id, program_id=principal.tenant_id, payload=payload)
        session.add(card_request)
        await session.flush()
        await enqueue(
            session, ISSUE_CARD, {"request_id": card_request.id}, unique_key=card_request.id
        )
        await session.refresh(card_request)
        accepted = One(data=CardRequestOut.model_validate(card_request))
        return JSONResponse(accepted.model_dump(mode="json"), status_code=status.HTTP_202_ACCEPTED)
    card = await service.issue_card(
        session, services, program_id=principal.tenant_id, request=issue
    )
    await session.refresh(card)
    return One(data=CardOut.of(card))


@routes.get(
    "/v1/requests/{request_id}", summary="An asynchronous card request", responses=CARD_ERRORS
)
async def get_request(
    request_id: Annotated[str, Path(description="A request id (`req_…`).")],
    principal: Partner,
    session: DbSession,
) -> One[CardRequestOut]:
    found = await RequestRepository(session, principal.tenant_id).get_or_404(request_id)
    return One(data=CardRequestOut.model_validate(found))


# -- reading -------------------------------------------------------------------------------------


@routes.get("/v1/cards/{card_id}", summary="Get a card (masked)", responses=CARD_ERRORS)
async def get_card(card_id: CardId, principal: CardReader, session: DbSession) -> One[CardOut]:
    return One(data=CardOut.of(await load_card(session, principal, card_id)))


@routes.get("/v1/cards", summary="List cards")
async def list_cards(
    principal: CardReader,
    session: DbSession,
    page: Pagination,
    user_id: Annotated[str | None, id_filter("usr")] = None,
    balance_id: Annotated[str | None, id_filter("bal")] = None,
    card_status: Annotated[CardStatus | None, Query(alias="status")] = None,
    type: Annotated[str | None, Query(pattern="^(VIRTUAL|PHYSICAL|GIFT)$")] = None,
    last4: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
) -> Many[CardOut]:
    repository = CardRepository(session, principal.tenant_id)
    statement = repository.listed(
        user_id=user_id, balance_id=balance_id, status=card_status, type=type, last4=last4
    )
    cards, meta = await repository.page(statement, page)
    return Many(data=[CardOut.of(c) for c in cards], meta=meta)


@routes.get("/v1/users/{user_id}/cards", summary="A user's cards", responses=CARD_ERRORS)
async def user_cards(
    user_id: Annotated[str, Path()], principal: CardReader, session: DbSession, page: Pagination
) -> Many[CardOut]:
    await UserRepository(session, principal.tenant_id).get_or_404(user_id)
    repository = CardRepository(session, principal.tenant_id)
    cards, meta = await repository.page(repository.listed(user_id=user_id), page)
    return Many(data=[CardOut.of(c) for c in cards], meta=meta)


@routes.get("/v1/me/cards", summary="The cardholder's cards")
async def my_cards(principal: Cardholder, session: DbSession, page: Pagination) -> Many[CardOut]:
    repository = CardRepository(session, principal.tenant_id)
    cards, meta = await repository.page(repository.listed(user_id=principal.user_id), page)
    return Many(data=[CardOut.of(c) for c in cards], meta=meta)


@routes.get(
    "/v1/me/cards/{card_id}", summary="One of the cardholder's cards", responses=CARD_ERRORS
)
async def my_card(card_id: CardId, principal: Cardholder, session: DbSession) -> One[CardOut]:
    return One(data=CardOut.of(await load_card(session, principal, card_id)))


# -- sensitive data ------------------------------------------------------------------------------


async def _reveal(
    session: AsyncSession, services: CardServices, card: Card, fields: Sequence[str]
) -> RevealOut:
    pan = await services.vault.decrypt(session, card)
    out = RevealOut()
    if "pan" in fields:
        out.pan = pan
    if "cvv" in fields:
        out.cvv = service.card_cvv2(services, card, pan)
    if "expiry" in fields:
        out.expiry = f"{card.expiry_month:02d}/{card.expiry_year % 100:02d}"
    return out


@routes.post(
    "/v1/cards/{card_id}/reveal",
    summary="Full card data: PAN, CVV2, expiry (JWE required)",
    description="Choose `fields`. Every reveal is audited. Ops staff never see full card data.",
    responses=CARD_ERRORS,
    openapi_extra=encryption("required"),
)
async def reveal(
    card_id: CardId,
    body: RevealOptions,
    principal: Partner,
    session: DbSession,
    services: CardServicesDep,
) -> One[RevealOut]:
    card = await load_card(session, principal, card_id)
    return One(data=await _reveal(session, services, card, body.fields))


@routes.post(
    "/v1/me/cards/{card_id}/reveal",
    summary="The cardholder's own card data (JWE and a fresh strong_auth session required)",
    responses=error_responses("NOT_FOUND", "STRONG_AUTH_REQUIRED"),
    openapi_extra=encryption("required"),
)
async def reveal_mine(
    card_id: CardId,
    body: RevealOptions,
    principal: Cardholder,
    session: DbSession,
    services: CardServicesDep,
) -> One[RevealOut]:
    card = await load_card(session, principal, card_id)
    service.require_strong_auth(principal.strong_auth_at)
    return One(data=await _reveal(session, services, card, body.fields))


@routes.put(
    "/v1/cards/{card_id}/pin",
    summary="Set the PIN (JWE required)",
    responses=error_responses("NOT_FOUND", "PIN_TOO_WEAK", "CARD_NOT_ACTIVE"),
    openapi_extra=encryption("required"),
)
async def set_pin(
    card_id: CardId, body: PinIn, principal: Partner, session: DbSession, services: CardServicesDep
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await service.set_pin(session, services, card, body.pin)
    return One(data=CardOut.of(card))


@routes.put(
    "/v1/me/cards/{card_id}/pin",
    summary="Set the PIN of one's own card (JWE required)",
    responses=error_responses("NOT_FOUND", "PIN_TOO_WEAK", "CARD_NOT_ACTIVE"),
    openapi_extra=encryption("required"),
)
async def set_my_pin(
    card_id: CardId,
    body: PinIn,
    principal: Cardholder,
    session: DbSession,
    services: CardServicesDep,
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await service.set_pin(session, services, card, body.pin)
    return One(data=CardOut.of(card))


@routes.post(
    "/v1/cards/{card_id}/reset-cvv",
    summary="Give a virtual card a new CVV2 (the old one stops working)",
    responses=error_responses("NOT_FOUND", "INVALID_CARD_TYPE"),
)
async def reset_cvv(card_id: CardId, principal: CardServicer, session: DbSession) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await service.reset_cvv(session, card)
    return One(data=CardOut.of(card))


# -- physical journey and activation -------------------------------------------------------------


@routes.post(
    "/v1/cards/{card_id}/process-request",
    summary="Physical card: ORDERED → ISSUANCE_IN_PROGRESS",
    responses=error_responses("NOT_FOUND", "INVALID_FULFILLMENT_TRANSITION", "INVALID_CARD_TYPE"),
)
async def process_request(
    card_id: CardId, principal: CardServicer, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await service.move_fulfillment(session, card, "process", FulfillmentStatus.ISSUANCE_IN_PROGRESS)
    return One(data=CardOut.of(card))


@routes.post(
    "/v1/cards/{card_id}/manufacturing",
    summary="Physical card: the bureau made it (or failed to)",
    responses=error_responses("NOT_FOUND", "INVALID_FULFILLMENT_TRANSITION", "INVALID_CARD_TYPE"),
)
async def manufacturing(
    card_id: CardId, body: ManufacturingIn, principal: CardServicer, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await service.move_fulfillment(session, card, "manufacturing", FulfillmentStatus(body.result))
    return One(data=CardOut.of(card))


@routes.post(
    "/v1/cards/{card_id}/delivery",
    summary="Physical card: shipped, delivered or returned (carrier, tracking number)",
    responses=error_responses("NOT_FOUND", "INVALID_FULFILLMENT_TRANSITION", "INVALID_CARD_TYPE"),
)
async def delivery(
    card_id: CardId, body: DeliveryIn, principal: CardServicer, session: DbSession
) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await service.move_fulfillment(
        session,
        card,
        "delivery",
        FulfillmentStatus(body.status),
        carrier=body.carrier,
        tracking=body.tracking_number,
    )
    return One(data=CardOut.of(card))


@routes.post(
    "/v1/cards/{card_id}/activate",
    summary="Activate a shipped or delivered physical card",
    responses=error_responses("NOT_FOUND", "CARD_NOT_ACTIVATABLE"),
)
async def activate(card_id: CardId, principal: CardServicer, session: DbSession) -> One[CardOut]:
    card = await load_card(session, principal, card_id, lock=True)
    await service.activate(session, card, actor=principal.kind.value)
    return One(data=CardOut.of(card))


@routes.post(
    "/v1/cards/activate",
    summary="Activate a physical card by PAN and expiry (JWE required)",
    responses=error_responses("NOT_FOUND", "CARD_NOT_ACTIVATABLE"),
    openapi_extra=encryption("required"),
)
async def activate_by_pan(
    body: ActivateByPan, principal: Partner, session: DbSession, services: CardServicesDep
) -> One[CardOut]:
    card = await service.find_by_pan(session, services, principal.tenant_id, body.pan)
    month, year = body.expiry.split("/")
    if card is None or card.expiry_month != int(month) or card.expiry_year % 100 != int(year):
        raise NotFound("card")
    locked = await load_card(session, principal, card.id, lock=True)
    await service.activate(session, locked, actor=principal.kind.value)
    return One(data=CardOut.of(locked))


@routes.post(
    "/v1/cards/{card_id}/verify-holder",
    summary="Check a person against the card's holder",
    description="Names compare case- and accent-insensitively, phones in E.164. At most 5 "
    "checks per card per hour.",
    responses=error_responses("NOT_FOUND", "RATE_LIMITED"),
)
async def verify_holder(
    card_id: CardId, body: HolderCheckIn, principal: Partner, session: DbSession
) -> One[HolderCheckOut]:
    card = await load_card(session, principal, card_id, lock=True)
    result = await service.verify_holder(
        session, card, first_name=body.first_name, last_name=body.last_name, phone=body.phone
    )
    return One(data=HolderCheckOut(**result))
