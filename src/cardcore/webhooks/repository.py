"""Reads of webhook subscriptions, messages and delivery attempts, scoped to a program; the
subscriptions new events go to."""

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.repository import TenantRepository
from cardcore.models import WebhookAttempt, WebhookEndpoint, WebhookMessage, WebhookMessageStatus


class WebhookRepository(TenantRepository[WebhookEndpoint]):
    """Subscriptions not deleted: a deleted one is as absent as one never made."""

    model = WebhookEndpoint
    noun = "webhook"

    def readable(self) -> Select[WebhookEndpoint]:
        return super().readable().where(WebhookEndpoint.deleted_at.is_(None))


class MessageRepository(TenantRepository[WebhookMessage]):
    model = WebhookMessage
    noun = "webhook message"

    def of_endpoint(
        self, endpoint_id: str, status: WebhookMessageStatus | None
    ) -> Select[WebhookMessage]:
        statement = self.readable().where(WebhookMessage.endpoint_id == endpoint_id)
        if status is not None:
            statement = statement.where(WebhookMessage.status == status)
        return statement


class AttemptRepository(TenantRepository[WebhookAttempt]):
    model = WebhookAttempt
    noun = "delivery attempt"

    def of_endpoint(self, endpoint_id: str) -> Select[WebhookAttempt]:
        return self.readable().where(WebhookAttempt.endpoint_id == endpoint_id)

    def of_event(self, event_id: str) -> Select[WebhookAttempt]:
        return self.readable().where(WebhookAttempt.event_id == event_id)


async def subscribed(session: AsyncSession, program_ids: set[str]) -> Sequence[WebhookEndpoint]:
    """The enabled, not deleted subscriptions of these programs: where their new events may go."""
    found = await session.scalars(
        select(WebhookEndpoint).where(
            WebhookEndpoint.program_id.in_(program_ids),
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.deleted_at.is_(None),
        )
    )
    return found.all()
