"""Fee schedules (ops write, partners read), fee lines, fee refunds and fee revenue."""

from typing import Annotated

from fastapi import Body, Depends, Path, Query, Security, status
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.fees import refunds, repository, schedules
from cardcore.fees.repository import FeeRefundRepository, FeeRepository, ScheduleRepository
from cardcore.fees.schemas import (
    FeeOut,
    FeeRefundIn,
    FeeRefundOut,
    FeeRevenueRow,
    FeeScheduleCreate,
    FeeScheduleOut,
    FeeType,
)
from cardcore.kit.access import Cardholder, Partner, partner_or_admin, require_admin
from cardcore.kit.envelope import ListMeta, Many, One
from cardcore.kit.errors import CardcoreError, error_responses
from cardcore.kit.filters import id_filter
from cardcore.kit.inputs import Timestamp
from cardcore.kit.pagination import PageParams, Pagination
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import FeeStatus

# The partner, or ops staff whose role the matrix allows ("fee_lines.read").
FeeLineReader = Annotated[Principal, Security(partner_or_admin("fee_lines.read"))]

routes = router(
    tags=["fees"],
    encryption="optional",
)
admin_routes = router(
    tags=["admin"],
    encryption="optional",
)

ScheduleWriter = Annotated[Principal, Security(require_admin("fees.schedules.write"))]
FeeReader = Annotated[Principal, Security(require_admin("fees.read"))]
FeeRefunder = Annotated[Principal, Security(require_admin("fees.refund"))]
# Nothing to send is a valid request: the body is optional and refunds what is left.
RefundOptions = Annotated[FeeRefundIn, Body(default_factory=FeeRefundIn)]
FeeId = Annotated[str, Path(description="A fee id (`fee_…`).")]
ScheduleId = Annotated[str, Path(description="A fee schedule version id (`fsc_…`).")]


async def _schedules(
    session: AsyncSession, program_id: str, page: PageParams, product_id: str | None
) -> Many[FeeScheduleOut]:
    repository = ScheduleRepository(session, program_id)
    found, meta = await repository.page(repository.listed(product_id), page)
    return Many(data=[FeeScheduleOut.model_validate(s) for s in found], meta=meta)


ProductFilter = Annotated[str | None, id_filter("prd")]


@admin_routes.post(
    "/v1/admin/fee-schedules",
    summary="A new version of the program's or a product's fee schedule (role admin)",
    status_code=status.HTTP_201_CREATED,
    description="The whole schedule, from `effective_from` on (now when left out). Fees already"
    " charged keep the version that priced them. A product's rules override the program's rules"
    " of the same type, form factor, period and channel.",
)
async def create_schedule(
    body: FeeScheduleCreate, principal: ScheduleWriter, session: DbSession
) -> One[FeeScheduleOut]:
    schedule = await schedules.create_schedule(
        session, principal.tenant_id, body, principal.actor_id
    )
    await session.refresh(schedule)
    return One(data=FeeScheduleOut.model_validate(schedule))


@admin_routes.get("/v1/admin/fee-schedules", summary="Fee schedule versions (admin, manager)")
async def admin_list_schedules(
    principal: FeeReader, session: DbSession, page: Pagination, product_id: ProductFilter = None
) -> Many[FeeScheduleOut]:
    return await _schedules(session, principal.tenant_id, page, product_id)


@admin_routes.get(
    "/v1/admin/fee-schedules/{schedule_id}",
    summary="One fee schedule version (admin, manager)",
    responses=error_responses("NOT_FOUND"),
)
async def admin_get_schedule(
    schedule_id: ScheduleId, principal: FeeReader, session: DbSession
) -> One[FeeScheduleOut]:
    found = await ScheduleRepository(session, principal.tenant_id).get_or_404(schedule_id)
    return One(data=FeeScheduleOut.model_validate(found))


@routes.get("/v1/fee-schedules", summary="The program's fee schedule versions")
async def list_schedules(
    principal: Partner, session: DbSession, page: Pagination, product_id: ProductFilter = None
) -> Many[FeeScheduleOut]:
    return await _schedules(session, principal.tenant_id, page, product_id)


async def _fees(
    session: AsyncSession, program_id: str, page: PageParams, **filters: str | None
) -> Many[FeeOut]:
    repository = FeeRepository(session, program_id)
    found, meta = await repository.page(repository.listed(**filters), page)
    return Many(data=[FeeOut.model_validate(f) for f in found], meta=meta)


def fee_filters(
    balance_id: Annotated[str | None, id_filter("bal")] = None,
    card_id: Annotated[str | None, id_filter("card")] = None,
    transaction_id: Annotated[str | None, id_filter("txn")] = None,
    money_transfer_id: Annotated[str | None, id_filter("trf")] = None,
    type: FeeType | None = None,
    status: FeeStatus | None = None,
) -> dict[str, str | None]:
    """The filters of a fee list, as query parameters."""
    return {
        "balance_id": balance_id,
        "card_id": card_id,
        "transaction_id": transaction_id,
        "money_transfer_id": money_transfer_id,
        "type": type,
        "status": status,
    }


FeeFilters = Annotated[dict[str, str | None], Depends(fee_filters)]


@routes.get("/v1/fees", summary="Fee lines: charged, held, waived, due or skipped")
async def list_fees(
    principal: FeeLineReader, session: DbSession, page: Pagination, filters: FeeFilters
) -> Many[FeeOut]:
    return await _fees(session, principal.tenant_id, page, **filters)


@routes.get("/v1/fees/{fee_id}", summary="A fee line", responses=error_responses("NOT_FOUND"))
async def get_fee(fee_id: FeeId, principal: FeeLineReader, session: DbSession) -> One[FeeOut]:
    found = await FeeRepository(session, principal.tenant_id).get_or_404(fee_id)
    return One(data=FeeOut.model_validate(found))


@routes.get("/v1/me/fees", summary="The cardholder's fees: charged, held, waived, due or skipped")
async def my_fees(principal: Cardholder, session: DbSession, page: Pagination) -> Many[FeeOut]:
    repository = FeeRepository(session, principal.tenant_id)
    found, meta = await repository.page(repository.of_owner(principal.user_id), page)
    return Many(data=[FeeOut.model_validate(f) for f in found], meta=meta)


@admin_routes.get("/v1/admin/fees", summary="Fee lines (admin, manager)")
async def admin_list_fees(
    principal: FeeReader, session: DbSession, page: Pagination, filters: FeeFilters
) -> Many[FeeOut]:
    return await _fees(session, principal.tenant_id, page, **filters)


@admin_routes.post(
    "/v1/admin/fees/{fee_id}/refund",
    summary="Refund all or part of a charged fee (admin, manager)",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("NOT_FOUND", "FEE_NOT_REFUNDABLE"),
)
async def refund_fee(
    fee_id: FeeId, body: RefundOptions, principal: FeeRefunder, session: DbSession
) -> One[FeeRefundOut]:
    fee = await FeeRepository(session, principal.tenant_id).get_or_404(fee_id, for_update=True)
    made = await refunds.refund(
        session, fee, amount=body.amount, reason=body.reason, actor=principal.actor_id or ""
    )
    await session.refresh(made)
    return One(data=FeeRefundOut.model_validate(made))


@admin_routes.get(
    "/v1/admin/fees/{fee_id}/refunds",
    summary="A fee's refunds (admin, manager)",
    responses=error_responses("NOT_FOUND"),
)
async def fee_refunds(
    fee_id: FeeId, principal: FeeReader, session: DbSession, page: Pagination
) -> Many[FeeRefundOut]:
    await FeeRepository(session, principal.tenant_id).get_or_404(fee_id)
    repository = FeeRefundRepository(session, principal.tenant_id)
    found, meta = await repository.page(repository.of_fee(fee_id), page)
    return Many(data=[FeeRefundOut.model_validate(r) for r in found], meta=meta)


@admin_routes.get(
    "/v1/admin/fee-revenue",
    summary="Fee revenue per currency and fee type, from the ledger (admin, manager)",
)
async def fee_revenue(
    principal: FeeReader,
    session: DbSession,
    start: Annotated[Timestamp, Query(alias="from", description="Inclusive.")],
    end: Annotated[Timestamp, Query(alias="to", description="Exclusive.")],
) -> Many[FeeRevenueRow]:
    if start.tzinfo is None or end.tzinfo is None:
        raise CardcoreError("VALIDATION_ERROR", "Give from and to with a time zone offset.")
    if end <= start:
        raise CardcoreError("VALIDATION_ERROR", "to must be after from.")
    rows = await repository.revenue(session, principal.tenant_id, start, end)
    return Many(
        data=[
            FeeRevenueRow(
                currency=row.currency,
                type=row.type,
                charged=int(row.charged or 0),
                refunded=int(row.refunded or 0),
                net=int(row.charged or 0) - int(row.refunded or 0),
                count=int(row.fee_count or 0),
            )
            for row in rows
        ],
        meta=ListMeta(next_cursor=None, has_more=False),
    )
