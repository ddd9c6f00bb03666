"""Balances, reloads, partner balances, summaries, IBAN validation, payment contacts, transfers."""

from typing import Annotated

from fastapi import Body, Path, Query, Security, status
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.balances import service
from cardcore.balances.repository import (
    BalanceRepository,
    EntryFilters,
    PartnerBalanceRepository,
    PaymentContactRepository,
    TransferRepository,
)
from cardcore.balances.schemas import (
    Amount,
    BalanceCreate,
    BalanceOut,
    IbanIn,
    IbanOut,
    LedgerEntry,
    PartnerBalanceCreate,
    PartnerBalanceOut,
    PartnerReload,
    PaymentContactCreate,
    PaymentContactOut,
    ReloadOut,
    SettleIn,
    SummaryRow,
    TransferCreate,
    TransferOut,
)
from cardcore.customers.repository import CorporationRepository, UserRepository
from cardcore.kit.access import Partner, partner_or_admin, require_admin
from cardcore.kit.envelope import ListMeta, Many, One
from cardcore.kit.errors import error_responses
from cardcore.kit.inputs import Timestamp
from cardcore.kit.pagination import PageParams, Pagination
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.ledger import service as ledger
from cardcore.models import (
    Balance,
    BalanceStatus,
    Corporation,
    PartnerBalance,
    User,
)

# The partner, or ops staff whose role the matrix allows ("balances.read").
BalanceReader = Annotated[Principal, Security(partner_or_admin("balances.read"))]

routes = router(
    tags=["balances"],
    encryption="optional",
)
admin_routes = router(
    tags=["admin"],
    encryption="optional",
)

BalanceId = Annotated[str, Path(description="A balance id (`bal_…`).")]
PartnerBalanceManager = Annotated[Principal, Security(require_admin("partner_balances.manage"))]
PartnerBalanceReader = Annotated[Principal, Security(require_admin("partner_balances.read"))]
SummaryReader = Annotated[Principal, Security(require_admin("balances.summary"))]
Settler = Annotated[Principal, Security(require_admin("transfers.settle"))]
# Nothing to send is a valid request: the body is optional and defaults to empty.
Settlement = Annotated[SettleIn, Body(default_factory=SettleIn)]


async def balance_out(session: AsyncSession, balance: Balance) -> BalanceOut:
    totals = await ledger.totals(session, balance.ledger_account_id)
    cards = await BalanceRepository(session, balance.program_id).card_ids(balance)
    return BalanceOut(
        id=balance.id,
        owner_type=balance.owner_type,
        owner_id=balance.owner_id,
        currency=balance.currency,
        status=balance.status,
        total=totals.posted_credit_balance,
        available=totals.available,
        pending=totals.debits_pending,
        cards=cards,
        created_at=balance.created_at,
    )


async def partner_balance_out(session: AsyncSession, found: PartnerBalance) -> PartnerBalanceOut:
    totals = await ledger.totals(session, found.ledger_account_id)
    return PartnerBalanceOut(
        id=found.id,
        type=found.type,
        currency=found.currency,
        total=totals.posted_credit_balance,
        available=totals.available,
        low_balance_threshold=found.low_balance_threshold,
        created_at=found.created_at,
    )


async def _partner_balance_page(
    session: AsyncSession, program_id: str, page: PageParams
) -> Many[PartnerBalanceOut]:
    repository = PartnerBalanceRepository(session, program_id)
    found, meta = await repository.page(repository.readable(), page)
    return Many(data=[await partner_balance_out(session, p) for p in found], meta=meta)


# -- balances ------------------------------------------------------------------------------------


@routes.post(
    "/v1/balances",
    summary="Open a balance for a user or corporation",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("NOT_FOUND", "KYC_NOT_APPROVED", "CURRENCY_NOT_ALLOWED"),
)
async def create_balance(
    body: BalanceCreate, principal: Partner, session: DbSession
) -> One[BalanceOut]:
    owner: User | Corporation
    if body.user_id is not None:
        owner = await UserRepository(session, principal.tenant_id).get_or_404(body.user_id)
    else:
        owner = await CorporationRepository(session, principal.tenant_id).get_or_404(
            body.corporation_id or ""
        )
    balance = await service.create_balance(session, owner=owner, currency=body.currency)
    await session.refresh(balance)
    return One(data=await balance_out(session, balance))


@routes.get(
    "/v1/balances/{balance_id}", summary="Get a balance", responses=error_responses("NOT_FOUND")
)
async def get_balance(
    balance_id: BalanceId, principal: BalanceReader, session: DbSession
) -> One[BalanceOut]:
    balance = await BalanceRepository(session, principal.tenant_id).get_or_404(balance_id)
    return One(data=await balance_out(session, balance))


@routes.get(
    "/v1/users/{user_id}/balances",
    summary="A user's balances",
    responses=error_responses("NOT_FOUND"),
)
async def user_balances(
    user_id: Annotated[str, Path(description="A user id (`usr_…`).")],
    principal: BalanceReader,
    session: DbSession,
    page: Pagination,
) -> Many[BalanceOut]:
    await UserRepository(session, principal.tenant_id).get_or_404(user_id)
    repository = BalanceRepository(session, principal.tenant_id)
    balances, meta = await repository.page(repository.of_owner(user_id), page)
    return Many(data=[await balance_out(session, b) for b in balances], meta=meta)


@routes.get(
    "/v1/balances/{balance_id}/ledger",
    summary="A balance's ledger entries, newest first, with the running balance",
    responses=error_responses("NOT_FOUND"),
)
async def balance_ledger(
    balance_id: BalanceId,
    principal: BalanceReader,
    session: DbSession,
    page: Pagination,
    created_from: Annotated[Timestamp | None, Query(description="Inclusive.")] = None,
    created_to: Annotated[Timestamp | None, Query(description="Exclusive.")] = None,
    code: Annotated[str | None, Query(max_length=40, description="e.g. reload, transfer")] = None,
    kind: Annotated[
        str | None,
        Query(pattern="^(single|pending|post|void|expire)$", description="The entry's kind."),
    ] = None,
) -> Many[LedgerEntry]:
    repository = BalanceRepository(session, principal.tenant_id)
    balance = await repository.get_or_404(balance_id)
    rows, meta = await repository.ledger_entries(
        balance,
        EntryFilters(created_from=created_from, created_to=created_to, code=code, kind=kind),
        page,
    )
    return Many(data=[LedgerEntry.model_validate(row._asdict()) for row in rows], meta=meta)


async def _set_status(
    session: AsyncSession, principal: Principal, balance_id: str, to: BalanceStatus
) -> BalanceOut:
    balance = await BalanceRepository(session, principal.tenant_id).get_or_404(
        balance_id, for_update=True
    )
    await service.set_status(session, balance, to)
    return await balance_out(session, balance)


@routes.post(
    "/v1/balances/{balance_id}/block",
    summary="Block a balance",
    responses=error_responses("NOT_FOUND", "BALANCE_NOT_ACTIVE"),
)
async def block_balance(
    balance_id: BalanceId, principal: Partner, session: DbSession
) -> One[BalanceOut]:
    return One(data=await _set_status(session, principal, balance_id, BalanceStatus.BLOCKED))


@routes.post(
    "/v1/balances/{balance_id}/unblock",
    summary="Unblock a balance",
    responses=error_responses("NOT_FOUND", "BALANCE_NOT_ACTIVE"),
)
async def unblock_balance(
    balance_id: BalanceId, principal: Partner, session: DbSession
) -> One[BalanceOut]:
    return One(data=await _set_status(session, principal, balance_id, BalanceStatus.ACTIVE))


@routes.post(
    "/v1/balances/{balance_id}/close",
    summary="Close a balance (only at zero)",
    responses=error_responses("NOT_FOUND", "BALANCE_NOT_EMPTY", "BALANCE_NOT_ACTIVE"),
)
async def close_balance(
    balance_id: BalanceId, principal: Partner, session: DbSession
) -> One[BalanceOut]:
    return One(data=await _set_status(session, principal, balance_id, BalanceStatus.CLOSED))


@routes.post(
    "/v1/balances/{balance_id}/reload",
    summary="Top up a balance from the partner's CREDIT balance",
    description="Send an `Idempotency-Key`: a retried reload then moves money once.",
    responses=error_responses(
        "NOT_FOUND", "INSUFFICIENT_PARTNER_FUNDS", "CURRENCY_MISMATCH", "BALANCE_NOT_ACTIVE"
    ),
)
async def reload_balance(
    balance_id: BalanceId, body: Amount, principal: Partner, session: DbSession
) -> One[ReloadOut]:
    balance = await BalanceRepository(session, principal.tenant_id).get_or_404(balance_id)
    moved = await service.reload_balance(
        session, balance, amount=body.amount, currency=body.currency
    )
    return One(
        data=ReloadOut(balance=await balance_out(session, balance), ledger_transfer_id=moved)
    )


@routes.get("/v1/partner-balances", summary="The program's partner balances")
async def list_partner_balances(
    principal: Partner, session: DbSession, page: Pagination
) -> Many[PartnerBalanceOut]:
    return await _partner_balance_page(session, principal.tenant_id, page)


# -- IBAN, contacts, transfers -------------------------------------------------------------------


@routes.post(
    "/v1/iban/validate",
    summary="Validate an IBAN and tell its bank",
    responses=error_responses("INVALID_IBAN"),
)
async def validate_iban(body: IbanIn, principal: Partner) -> One[IbanOut]:
    return One(data=IbanOut(**service.describe_iban(service.parse_iban(body.iban))))


@routes.post(
    "/v1/payment-contacts",
    summary="Save an IBAN payee for a user",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("NOT_FOUND", "INVALID_IBAN"),
)
async def create_payment_contact(
    body: PaymentContactCreate, principal: Partner, session: DbSession
) -> One[PaymentContactOut]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(body.user_id)
    contact = await service.create_payment_contact(
        session, user=user, iban=body.iban, holder_name=body.holder_name
    )
    await session.refresh(contact)
    return One(data=PaymentContactOut.model_validate(contact))


@routes.post(
    "/v1/transfers",
    summary="Send money to an IBAN contact or another balance",
    description="Internal transfers complete at once; IBAN transfers hold the amount until ops "
    "complete or fail them. Send an `Idempotency-Key`.",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        "NOT_FOUND", "INSUFFICIENT_FUNDS", "CURRENCY_MISMATCH", "BALANCE_NOT_ACTIVE"
    ),
)
async def create_transfer(
    body: TransferCreate, principal: Partner, session: DbSession
) -> One[TransferOut]:
    balances = BalanceRepository(session, principal.tenant_id)
    source = await balances.get_or_404(body.from_balance_id)
    destination = contact = None
    if body.to_balance_id is not None:
        destination = await balances.get_or_404(body.to_balance_id)
    else:
        contact = await PaymentContactRepository(session, principal.tenant_id).get_or_404(
            body.payment_contact_id or ""
        )
    transfer = await service.create_transfer(
        session,
        source=source,
        amount=body.amount,
        currency=body.currency,
        reference=body.reference,
        destination=destination,
        contact=contact,
    )
    await session.refresh(transfer)
    return One(data=TransferOut.model_validate(transfer))


@routes.get(
    "/v1/transfers/{transfer_id}", summary="Get a transfer", responses=error_responses("NOT_FOUND")
)
async def get_transfer(
    transfer_id: Annotated[str, Path(description="A transfer id (`trf_…`).")],
    principal: Partner,
    session: DbSession,
) -> One[TransferOut]:
    transfer = await TransferRepository(session, principal.tenant_id).get_or_404(transfer_id)
    return One(data=TransferOut.model_validate(transfer))


# -- ops -----------------------------------------------------------------------------------------


@admin_routes.post(
    "/v1/admin/partner-balances",
    summary="Create a partner CREDIT or DEPOSIT balance (role admin)",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("ALREADY_EXISTS", "CURRENCY_NOT_ALLOWED"),
)
async def create_partner_balance(
    body: PartnerBalanceCreate, principal: PartnerBalanceManager, session: DbSession
) -> One[PartnerBalanceOut]:
    found = await service.create_partner_balance(
        session,
        program_id=principal.tenant_id,
        type=body.type,
        currency=body.currency,
        low_balance_threshold=body.low_balance_threshold,
    )
    await session.refresh(found)
    return One(data=await partner_balance_out(session, found))


@admin_routes.get("/v1/admin/partner-balances", summary="Partner balances (admin, manager)")
async def admin_partner_balances(
    principal: PartnerBalanceReader, session: DbSession, page: Pagination
) -> Many[PartnerBalanceOut]:
    return await _partner_balance_page(session, principal.tenant_id, page)


@admin_routes.post(
    "/v1/admin/partner-balances/{partner_balance_id}/reload",
    summary="Record money received for a partner balance (role admin)",
    responses=error_responses("NOT_FOUND"),
)
async def reload_partner_balance(
    partner_balance_id: Annotated[str, Path(description="A partner balance id (`pbl_…`).")],
    body: PartnerReload,
    principal: PartnerBalanceManager,
    session: DbSession,
) -> One[PartnerBalanceOut]:
    found = await PartnerBalanceRepository(session, principal.tenant_id).get_or_404(
        partner_balance_id
    )
    await service.reload_partner_balance(
        session, found, amount=body.amount, reference=body.reference
    )
    return One(data=await partner_balance_out(session, found))


@admin_routes.get("/v1/admin/balance-summary", summary="Money held, per currency (admin, manager)")
async def balance_summary(principal: SummaryReader, session: DbSession) -> Many[SummaryRow]:
    rows = await service.balance_summary(session, principal.tenant_id)
    return Many(
        data=[SummaryRow(**r) for r in rows], meta=ListMeta(next_cursor=None, has_more=False)
    )


async def _settle(
    session: AsyncSession,
    principal: Principal,
    transfer_id: str,
    completed: bool,
    reason: str | None,
) -> TransferOut:
    transfer = await TransferRepository(session, principal.tenant_id).get_or_404(
        transfer_id, for_update=True
    )
    await service.settle_transfer(session, transfer, completed=completed, reason=reason)
    return TransferOut.model_validate(transfer)


@admin_routes.post(
    "/v1/admin/transfers/{transfer_id}/complete",
    summary="The bank executed an IBAN transfer (admin, manager)",
    responses=error_responses("NOT_FOUND", "TRANSFER_NOT_PENDING"),
)
async def complete_transfer(
    transfer_id: Annotated[str, Path()], body: Settlement, principal: Settler, session: DbSession
) -> One[TransferOut]:
    return One(data=await _settle(session, principal, transfer_id, True, body.reason))


@admin_routes.post(
    "/v1/admin/transfers/{transfer_id}/fail",
    summary="The bank refused an IBAN transfer: release the hold (admin, manager)",
    responses=error_responses("NOT_FOUND", "TRANSFER_NOT_PENDING"),
)
async def fail_transfer(
    transfer_id: Annotated[str, Path()], body: Settlement, principal: Settler, session: DbSession
) -> One[TransferOut]:
    return One(data=await _settle(session, principal, transfer_id, False, body.reason))
