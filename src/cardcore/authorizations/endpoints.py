"""The card network's calls (authorize, reverse, clear) and the transactions partners read."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Security
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cardcore.authorizations import expiry, follow_ups, service
from cardcore.authorizations.repository import (
    FxRateRepository,
    TransactionFilters,
    TransactionRepository,
)
from cardcore.authorizations.schemas import (
    AmountFollowUpIn,
    AuthorizationIn,
    AuthorizationOut,
    FollowUpIn,
    Merchant,
    NetworkIds,
    PostingIn,
)
from cardcore.cards.dependencies import CardServicesDep
from cardcore.cards.repository import CardRepository
from cardcore.kit.access import (
    Cardholder,
    Network,
    TestModePartner,
    partner_or_admin,
    require_admin,
)
from cardcore.kit.envelope import ListMeta, Many, One
from cardcore.kit.errors import error_responses
from cardcore.kit.filters import AmountFilter, id_filter
from cardcore.kit.inputs import Timestamp
from cardcore.kit.money import CurrencyCode, MinorUnits
from cardcore.kit.pagination import Pagination
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import TransactionStatus

admin_routes = router(
    tags=["admin"],
)
FxReader = Annotated[Principal, Security(require_admin("fx.read"))]
FxWriter = Annotated[Principal, Security(require_admin("fx.write"))]
network_routes = router(
    tags=["network"],
    responses=error_responses(
        "UNAUTHENTICATED", "FORBIDDEN", "VALIDATION_ERROR", "NOT_FOUND", "DUPLICATE_REQUEST_ID"
    ),
)

# The partner, or ops staff whose role the matrix allows ("transactions.read").
TransactionReader = Annotated[Principal, Security(partner_or_admin("transactions.read"))]

routes = router(
    tags=["transactions"],
    encryption="optional",
)


class TransactionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    card_id: str
    balance_id: str
    kind: str = Field(
        description="AUTHORIZATION, FORCE_POST, or REFUND (a credit with no purchase)."
    )
    status: str = Field(description="PENDING, SETTLED, DECLINED, REVERSED or EXPIRED.")
    amount: int
    currency: str
    billing_amount: int = Field(description="What the balance was charged, in its currency.")
    billing_currency: str
    held_amount: int
    settled_amount: int
    channel: str
    entry_mode: str
    merchant: dict[str, Any]
    response_code: str
    decline_reason: str | None
    authorization_code: str | None
    created_at: datetime


class HistoryEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str = Field(
        description="authorization, increment, reversal, clearing, refund, expiry, force_post"
    )
    amount: int
    response: dict[str, Any]
    created_at: datetime


class TransactionDetail(TransactionOut):
    history: list[HistoryEntry]


async def authorize(
    body: AuthorizationIn, principal: Network, session: DbSession, services: CardServicesDep
) -> AuthorizationOut:
    return AuthorizationOut(
        **await service.authorize(
            session,
            services,
            program_id=principal.tenant_id,
            request=body.to_authorization(principal.tenant_id),
        )
    )


# Most messages are served before the router by authorizations/lean.py, with the same service.
network_routes.add_api_route(
    "/v1/network/authorizations",
    authorize,
    methods=["POST"],
    summary="Authorize a card transaction (network principal)",
    description="Idempotent on the network ids: a retransmission gets the first answer.",
)


async def _follow_up(
    body: "FollowUpIn | RefundIn", principal: Principal, session: DbSession, kind: str
) -> AuthorizationOut:
    """A message about an authorization, as follow_ups.follow_up handles it."""
    assert body.authorization_id is not None
    result = await follow_ups.follow_up(
        session,
        kind=kind,
        program_id=principal.tenant_id,
        transaction_id=body.authorization_id,
        amount=body.amount,
        network_key=body.network.key(principal.tenant_id, kind),
    )
    return AuthorizationOut(**result)


@network_routes.post("/v1/network/reversals", summary="Release all or part of a hold")
async def reverse(body: FollowUpIn, principal: Network, session: DbSession) -> AuthorizationOut:
    return await _follow_up(body, principal, session, "reversal")


@network_routes.post(
    "/v1/network/clearings",
    summary="Settle an authorization (post the hold)",
    description="`amount` (balance currency) defaults to what is held. Less releases the rest;"
    " more is charged on top when within the merchant category's tolerance (restaurants, bars,"
    " taxis and salons 20 %, hotels and car rentals 15 %, else 0; programs may override),"
    " otherwise 422 CLEARING_ABOVE_TOLERANCE.",
    responses=error_responses("CLEARING_ABOVE_TOLERANCE", "INSUFFICIENT_FUNDS"),
)
async def clear(body: FollowUpIn, principal: Network, session: DbSession) -> AuthorizationOut:
    return await _follow_up(body, principal, session, "clearing")


@network_routes.post(
    "/v1/network/force-post-clearings",
    summary="A clearing with no authorization before it",
    description="The network settled it already (offline terminal, stand-in): no card state or"
    " control is asked. When the balance cannot cover it the transaction is recorded DECLINED 51"
    " for ops and the dispute process; the balance never goes below zero.",
)
async def force_post(
    body: PostingIn, principal: Network, session: DbSession, services: CardServicesDep
) -> AuthorizationOut:
    result = await service.post_without_authorization(
        session,
        services,
        program_id=principal.tenant_id,
        request=body.to_request(principal.tenant_id, "force_post"),
        kind="FORCE_POST",
    )
    return AuthorizationOut(**result)


class InquiryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    card_id: str | None = None
    pan: str | None = Field(default=None, min_length=12, max_length=19)
    network: NetworkIds | None = Field(
        default=None,
        description="The message's network ids, as every network message carries them. An "
        "inquiry moves and records nothing, so a retransmission is answered afresh.",
    )

    @model_validator(mode="after")
    def one_card(self) -> "InquiryIn":
        if (self.card_id is None) == (self.pan is None):
            raise ValueError("give exactly one of card_id and pan")
        return self


class InquiryOut(BaseModel):
    card_id: str
    response_code: str
    available_balance: int | None
    currency: str


@network_routes.post(
    "/v1/network/balance-inquiries",
    summary="What the card can spend now",
    description="A card that could not authorize answers its decline code and no balance. Takes "
    "the same network ids as every other message (`network_transaction_id`, or `rrn` with "
    "`stan`); nothing is held or stored, so a retransmission gets the balance as it is then.",
)
async def balance_inquiry(
    body: InquiryIn, principal: Network, session: DbSession, services: CardServicesDep
) -> InquiryOut:
    result = await service.balance_inquiry(
        session,
        services,
        program_id=principal.tenant_id,
        card_id=body.card_id,
        pan=body.pan,
    )
    return InquiryOut(**result)


@network_routes.post("/v1/network/incremental-authorizations", summary="Raise a hold")
async def increment(
    body: AmountFollowUpIn, principal: Network, session: DbSession
) -> AuthorizationOut:
    return await _follow_up(body, principal, session, "increment")


class RefundIn(BaseModel):
    """A refund linked to its purchase (`authorization_id`, amount in the balance's currency), or
    a merchant credit naming only the card (card_id or pan, currency, merchant)."""

    model_config = ConfigDict(extra="forbid")

    authorization_id: str | None = None
    card_id: str | None = None
    pan: str | None = Field(default=None, min_length=12, max_length=19)
    amount: MinorUnits = Field(gt=0)
    currency: CurrencyCode | None = None
    merchant: Merchant | None = None
    channel: Literal["POS", "ECOM", "ATM", "MOTO"] = "POS"
    entry_mode: Literal["CHIP", "CONTACTLESS", "MAGSTRIPE", "MANUAL", "ECOM"] = "MANUAL"
    network: NetworkIds

    @model_validator(mode="after")
    def linked_or_card(self) -> "RefundIn":
        cards = (self.card_id is not None) + (self.pan is not None)
        if self.authorization_id is not None:
            if cards or self.currency or self.merchant:
                raise ValueError("a linked refund gives only authorization_id, amount, network")
        elif cards != 1 or self.currency is None or self.merchant is None:
            raise ValueError(
                "give authorization_id, or one of card_id and pan with currency and merchant"
            )
        return self


@network_routes.post(
    "/v1/network/refunds",
    summary="Money back to the card",
    description="Linked to the purchase (`authorization_id`; refunds add up to at most what it"
    " settled for), or a credit naming only the card.",
    responses=error_responses("TRANSACTION_NOT_SETTLED"),
)
async def refund(
    body: RefundIn, principal: Network, session: DbSession, services: CardServicesDep
) -> AuthorizationOut:
    if body.authorization_id is None:
        assert body.currency is not None
        assert body.merchant is not None
        posting = PostingIn(
            card_id=body.card_id,
            pan=body.pan,
            amount=body.amount,
            currency=body.currency,
            merchant=body.merchant,
            channel=body.channel,
            entry_mode=body.entry_mode,
            network=body.network,
        )
        result = await service.post_without_authorization(
            session,
            services,
            program_id=principal.tenant_id,
            request=posting.to_request(principal.tenant_id, "refund"),
            kind="REFUND",
        )
    else:
        return await _follow_up(body, principal, session, "refund")
    return AuthorizationOut(**result)


class FxRateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base: CurrencyCode
    quote: CurrencyCode
    rate: Decimal = Field(gt=0, max_digits=24, decimal_places=10, description="1 base = rate quote")


@admin_routes.get("/v1/admin/fx-rates", summary="FX rates (admin, manager)")
async def list_fx_rates(principal: FxReader, session: DbSession) -> Many[FxRateIn]:
    rows = await FxRateRepository(session, principal.tenant_id).all()
    data = [FxRateIn(base=r.base, quote=r.quote, rate=r.rate) for r in rows]
    return Many(data=data, meta=ListMeta(next_cursor=None, has_more=False))


@admin_routes.put("/v1/admin/fx-rates", summary="Set an FX rate (role admin)")
async def put_fx_rate(body: FxRateIn, principal: FxWriter, session: DbSession) -> One[FxRateIn]:
    await FxRateRepository(session, principal.tenant_id).put(body.base, body.quote, body.rate)
    return One(data=body)


@routes.get("/v1/transactions", summary="Card transactions, declines included")
async def list_transactions(
    principal: TransactionReader,
    session: DbSession,
    page: Pagination,
    card_id: Annotated[str | None, id_filter("card")] = None,
    balance_id: Annotated[str | None, id_filter("bal")] = None,
    user_id: Annotated[str | None, id_filter("usr")] = None,
    transaction_status: Annotated[TransactionStatus | None, Query(alias="status")] = None,
    created_from: Annotated[Timestamp | None, Query(description="Inclusive.")] = None,
    created_to: Annotated[Timestamp | None, Query(description="Exclusive.")] = None,
    min_amount: AmountFilter = None,
    max_amount: AmountFilter = None,
) -> Many[TransactionOut]:
    repository = TransactionRepository(session, principal.tenant_id)
    statement = repository.listed(
        TransactionFilters(
            card_id=card_id,
            balance_id=balance_id,
            user_id=user_id,
            status=transaction_status,
            created_from=created_from,
            created_to=created_to,
            min_amount=min_amount,
            max_amount=max_amount,
        )
    )
    found, meta = await repository.page(statement, page)
    return Many(data=[TransactionOut.model_validate(t) for t in found], meta=meta)


@routes.get(
    "/v1/cards/{card_id}/transactions",
    summary="A card's transactions",
    responses=error_responses("NOT_FOUND"),
)
async def card_transactions(
    card_id: Annotated[str, Path()],
    principal: TransactionReader,
    session: DbSession,
    page: Pagination,
) -> Many[TransactionOut]:
    # An unknown or another program's card is a 404, as on every route that names an object;
    # an empty list would tell the caller nothing and differ from the card's own routes.
    await CardRepository(session, principal.tenant_id).get_or_404(card_id)
    return await list_transactions(principal, session, page, card_id=card_id)


@routes.get(
    "/v1/transactions/{transaction_id}",
    summary="A card transaction",
    responses=error_responses("NOT_FOUND"),
)
async def get_transaction(
    transaction_id: Annotated[str, Path()], principal: TransactionReader, session: DbSession
) -> One[TransactionDetail]:
    repository = TransactionRepository(session, principal.tenant_id)
    found = await repository.get_or_404(transaction_id)
    events = await repository.history(found)
    return One(
        data=TransactionDetail(
            **TransactionOut.model_validate(found).model_dump(),
            history=[HistoryEntry.model_validate(e) for e in events],
        )
    )


@routes.get("/v1/me/transactions", summary="The cardholder's transactions")
async def my_transactions(
    principal: Cardholder, session: DbSession, page: Pagination
) -> Many[TransactionOut]:
    repository = TransactionRepository(session, principal.tenant_id)
    found, meta = await repository.page(
        repository.listed(TransactionFilters(user_id=principal.user_id)), page
    )
    return Many(data=[TransactionOut.model_validate(t) for t in found], meta=meta)


# -- test mode: simulation -------------------------------------------------------------------------

# Always mounted: one server serves live and test programs alike, and the guard (TestModePartner)
# answers a live program's credential with TEST_MODE_ONLY before anything is read or moved.
simulate_routes = router(
    tags=["simulation"],
    responses=error_responses("TEST_MODE_ONLY", "NOT_FOUND"),
)


@simulate_routes.post(
    "/v1/simulate/authorizations",
    summary="Test mode: authorize a test transaction with partner credentials",
    description="For test programs only (`ck_test_` credentials; a live program's answer "
    "`403 TEST_MODE_ONLY`). The same engine as the network's route, on the program's own cards "
    "and (play) money.",
)
async def simulate_authorization(
    body: AuthorizationIn, principal: TestModePartner, session: DbSession, services: CardServicesDep
) -> AuthorizationOut:
    return await authorize(body, principal, session, services)


@simulate_routes.post("/v1/simulate/reversals", summary="Test mode: release a hold")
async def simulate_reversal(
    body: FollowUpIn, principal: TestModePartner, session: DbSession
) -> AuthorizationOut:
    return await reverse(body, principal, session)


@simulate_routes.post("/v1/simulate/clearings", summary="Test mode: settle an authorization")
async def simulate_clearing(
    body: FollowUpIn, principal: TestModePartner, session: DbSession
) -> AuthorizationOut:
    return await clear(body, principal, session)


@simulate_routes.post(
    "/v1/simulate/refunds", summary="Test mode: refund a purchase or credit a card"
)
async def simulate_refund(
    body: RefundIn, principal: TestModePartner, session: DbSession, services: CardServicesDep
) -> AuthorizationOut:
    return await refund(body, principal, session, services)


@simulate_routes.post(
    "/v1/simulate/force-post-clearings", summary="Test mode: force-post a clearing"
)
async def simulate_force_post(
    body: PostingIn, principal: TestModePartner, session: DbSession, services: CardServicesDep
) -> AuthorizationOut:
    return await force_post(body, principal, session, services)


class ExpireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    authorization_id: str


@simulate_routes.post("/v1/simulate/expire", summary="Test mode: expire a hold now")
async def simulate_expire(
    body: ExpireIn, principal: TestModePartner, session: DbSession
) -> AuthorizationOut:
    result = await expiry.expire_now(
        session, program_id=principal.tenant_id, transaction_id=body.authorization_id
    )
    return AuthorizationOut(**result)
