"""Webhook subscriptions: the rules, with no HTTP (their secrets and signatures:
`webhooks/signing.py`)."""

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.crypto import Keyring
from cardcore.kit.errors import validation_error
from cardcore.kit.outbox import EVENT_TYPES, record_event
from cardcore.models import Event, WebhookEndpoint, WebhookMessage, WebhookMessageStatus
from cardcore.webhooks.events import WebhookTest
from cardcore.webhooks.signing import PREVIOUS_SECRET_LIFETIME, new_secret, seal


def matches(patterns: list[str], event_type: str) -> bool:
    if not patterns:
        return True
    for pattern in patterns:
        if pattern == "*" or pattern == event_type:
            return True
        if pattern.endswith(".*") and event_type.startswith(pattern[:-1]):
            return True
    return False


def check_event_types(patterns: list[str]) -> list[str]:
    """Every pattern must name at least one event type we emit: a typo must not silently
    subscribe to nothing."""
    for pattern in patterns:
        if not any(matches([pattern], name) for name in EVENT_TYPES):
            raise validation_error(
                "event_types", "UNKNOWN_EVENT_TYPE", f"{pattern!r} matches no event type."
            )
    return sorted(set(patterns))


async def create_endpoint(
    session: AsyncSession,
    keyring: Keyring,
    *,
    program_id: str,
    url: str,
    event_types: list[str],
    description: str | None,
    enabled: bool,
) -> tuple[WebhookEndpoint, str]:
    endpoint = WebhookEndpoint(
        program_id=program_id,
        url=url,
        event_types=check_event_types(event_types),
        description=description,
        enabled=enabled,
        secret_ciphertext=b"",
    )
    session.add(endpoint)
    await session.flush()
    secret = new_secret()
    endpoint.secret_ciphertext = seal(keyring, endpoint.id, secret)
    await session.flush()
    return endpoint, secret


async def rotate_secret(session: AsyncSession, keyring: Keyring, endpoint: WebhookEndpoint) -> str:
    """A new secret; the old one keeps signing beside it for 24 h so receivers can switch."""
    secret = new_secret()
    endpoint.previous_secret_ciphertext = endpoint.secret_ciphertext
    endpoint.previous_secret_expires_at = datetime.now(UTC) + PREVIOUS_SECRET_LIFETIME
    endpoint.secret_ciphertext = seal(keyring, endpoint.id, secret)
    await session.flush()
    return secret


async def send_test(session: AsyncSession, endpoint: WebhookEndpoint) -> WebhookMessage:
    """A `webhook.test` event for this one subscription (not fanned out to the others)."""
    event = record_event(
        session,
        program_id=endpoint.program_id,
        object_id=endpoint.id,
        data=WebhookTest(webhook_id=endpoint.id),
    )
    event.dispatched_at = datetime.now(UTC)
    await session.flush()
    message = WebhookMessage(
        program_id=endpoint.program_id,
        endpoint_id=endpoint.id,
        event_id=event.id,
        object_id=endpoint.id,
    )
    session.add(message)
    await session.flush()
    return message


async def retry_message(session: AsyncSession, message: WebhookMessage) -> WebhookMessage:
    message.status = WebhookMessageStatus.PENDING
    message.attempts = 0
    now = await session.scalar(select(func.statement_timestamp()))
    assert now is not None
    message.next_attempt_at = now
    await session.flush()
    return message


async def recover(session: AsyncSession, endpoint: WebhookEndpoint, since: datetime) -> int:
    """Send again every message to this subscription that failed since `since`."""
    result = await session.execute(
        update(WebhookMessage)
        .where(
            WebhookMessage.endpoint_id == endpoint.id,
            WebhookMessage.status == WebhookMessageStatus.FAILED,
            WebhookMessage.created_at >= since,
        )
        .values(
            status=WebhookMessageStatus.PENDING,
            attempts=0,
            next_attempt_at=func.statement_timestamp(),
        )
    )
    return cast(CursorResult[Any], result).rowcount or 0


async def oldest_undelivered_age(session: AsyncSession) -> float:
    """Seconds since the oldest event still waiting for fan-out or delivery was created."""
    oldest: datetime | None = await session.scalar(
        select(
            func.least(
                select(func.min(Event.created_at))
                .where(Event.dispatched_at.is_(None))
                .scalar_subquery(),
                select(func.min(WebhookMessage.created_at))
                .where(WebhookMessage.status == WebhookMessageStatus.PENDING)
                .scalar_subquery(),
            )
        )
    )
    if oldest is None:
        return 0.0
    return max(0.0, (datetime.now(UTC) - oldest).total_seconds())
