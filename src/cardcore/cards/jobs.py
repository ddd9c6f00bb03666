"""The cards' scheduled work: asynchronous issuance (`POST /v1/cards?async=true`, its status
at `GET /v1/requests/{id}`), a persisted job on the worker, never an in-memory task; and
expiry."""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards import lifecycle
from cardcore.cards.dependencies import build_card_services
from cardcore.cards.events import CardRequestCompleted
from cardcore.cards.service import IssueRequest, issue_card
from cardcore.kit.errors import CardcoreError
from cardcore.kit.jobs import JobContext, JobKind
from cardcore.kit.outbox import record_event
from cardcore.models import Card, CardRequest, CardStatus, RequestStatus
from cardcore.models.cards import LIVE_STATUSES


async def issue_requested_card(
    session: AsyncSession, payload: dict[str, Any], context: JobContext
) -> None:
    request = await session.get(CardRequest, payload["request_id"], with_for_update=True)
    if request is None or request.status != RequestStatus.PENDING:
        return  # done already (a retried job must not issue twice)
    services = build_card_services(context.settings, context.keyring)
    try:
        # A refusal (KYC, balance, BIN…) rolls back the issuance alone and is the answer.
        async with session.begin_nested():
            card = await issue_card(
                session,
                services,
                program_id=request.program_id,
                request=IssueRequest(**request.payload),
            )
    except CardcoreError as exc:
        request.status = RequestStatus.FAILED
        request.error_code, request.error_message = exc.code, exc.message
    else:
        request.status, request.card_id = RequestStatus.COMPLETED, card.id
    request.completed_at = datetime.now(UTC)
    record_event(
        session,
        program_id=request.program_id,
        object_id=request.id,
        data=CardRequestCompleted(
            request_id=request.id,
            status=request.status,
            card_id=request.card_id,
            error_code=request.error_code,
        ),
    )


async def expire_cards(session: AsyncSession, payload: dict[str, Any], context: JobContext) -> None:
    now = datetime.now(UTC)
    months = now.year * 12 + now.month
    candidates = await session.scalars(
        select(Card)
        .where(
            Card.status.in_(LIVE_STATUSES),
            (Card.expiry_year * 12 + Card.expiry_month) < months,
        )
        .with_for_update(skip_locked=True)
        .limit(1000)
    )
    for card in candidates:
        await lifecycle.transition(
            session, card, CardStatus.EXPIRED, actor="system", reason="expiry month passed"
        )


ISSUE_CARD = JobKind("cards.issue", issue_requested_card)
EXPIRE_CARDS = JobKind("cards.expire", expire_cards, every=timedelta(hours=24))
JOBS = (ISSUE_CARD, EXPIRE_CARDS)
