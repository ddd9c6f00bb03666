"""Asynchronous issuance (seed 003 `/cards/virtual/async`, seed 004 request status): a persisted
job on the worker, never an in-memory task."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.cards.dependencies import build_card_services
from cardcore.cards.events import CardRequestCompleted
from cardcore.cards.service import IssueRequest, issue_card
from cardcore.kit.errors import CardcoreError
from cardcore.kit.jobs import JobContext, job
from cardcore.kit.outbox import record_event
from cardcore.models import CardRequest


@job("cards.issue")
async def issue_requested_card(
    session: AsyncSession, payload: dict[str, Any], context: JobContext
) -> None:
    request = await session.get(CardRequest, payload["request_id"], with_for_update=True)
    if request is None or request.status != "PENDING":
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
        request.status, request.error_code, request.error_message = "FAILED", exc.code, exc.message
    else:
        request.status, request.card_id = "COMPLETED", card.id
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
