"""Getting events to subscribers: at least once, signed, in order per object, retried for days.

Two queues for the job runner (kit/jobs.py):
- fan-out turns committed, not yet dispatched events into one message per matching subscription
  (subscriptions created after the event do not get it), in the transaction that marks the
  events dispatched;
- delivery claims one due message — and only when no earlier message about the same object is
  still pending for that subscription, so a receiver sees an object's events in the order they
  happened — sends it, records the attempt, and reschedules or finishes the message, all while
  holding the message's row lock. A worker killed mid-send loses its transaction and the message
  is due again; two workers never send the same message at once.

The body is `{"id", "type", "version", "created_at", "program_id", "object_id", "data"}`; the
headers follow Standard Webhooks (`webhook-id` is the event id, the receiver's dedup key).
"""

import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from cardcore.config import Settings
from cardcore.kit.crypto import Keyring
from cardcore.kit.inputs import scrub
from cardcore.kit.logging import get_logger
from cardcore.kit.metrics import WEBHOOK_DELIVERIES, WEBHOOK_LATENCY
from cardcore.kit.outbox import record_event
from cardcore.models import (
    Event,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    WebhookMessageStatus,
)
from cardcore.webhooks.events import WebhookDisabled
from cardcore.webhooks.repository import subscribed
from cardcore.webhooks.service import matches
from cardcore.webhooks.signing import sign, signing_secrets
from cardcore.webhooks.ssrf import RefusedDestination, pin

log = get_logger(__name__)

# Delay before each retry: 5 s, 5 min, 30 min, 2 h, 5 h, then every 10 h — about 2.8 days in
# all; after the last one the message is failed (and can still be retried or recovered).
RETRY_SCHEDULE = [timedelta(seconds=s) for s in (5, 300, 1800, 7200, 18000)] + [
    timedelta(hours=10)
] * 6
DISABLE_AFTER = timedelta(days=5)
FANOUT_BATCH = 200
SNIPPET_CHARS = 1000


def retry_delay(attempts: int) -> timedelta | None:
    """The wait after the `attempts`-th failure, with ±10 % jitter; None: give up."""
    if attempts > len(RETRY_SCHEDULE):
        return None
    return RETRY_SCHEDULE[attempts - 1] * random.uniform(0.9, 1.1)  # noqa: S311 - jitter


def message_body(event: Event) -> bytes:
    return json.dumps(
        {
            "id": event.id,
            "type": event.type,
            "version": event.version,
            "created_at": event.created_at.isoformat(),
            "program_id": event.program_id,
            "object_id": event.object_id,
            "data": event.data,
        },
        separators=(",", ":"),
    ).encode()


class FanOutQueue:
    name = "webhooks.fan_out"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def run_one(self) -> bool:
        async with self.sessionmaker() as session, session.begin():
            # Claimed and marked in one statement, and only the columns fan-out needs: every
            # card message adds an event, so this runs once per batch of them.
            batch = (
                select(Event.id)
                .where(Event.dispatched_at.is_(None))
                .order_by(Event.id)
                .limit(FANOUT_BATCH)
                .with_for_update(skip_locked=True)
            )
            events = (
                await session.execute(
                    update(Event)
                    .where(Event.id.in_(batch.scalar_subquery()))
                    .values(dispatched_at=func.now())
                    .returning(
                        Event.id, Event.program_id, Event.object_id, Event.type, Event.created_at
                    )
                    .execution_options(synchronize_session=False)
                )
            ).all()
            if not events:
                return False
            programs = {event.program_id for event in events}
            endpoints = await subscribed(session, programs)
            rows = [
                {
                    "program_id": event.program_id,
                    "endpoint_id": endpoint.id,
                    "event_id": event.id,
                    "object_id": event.object_id,
                }
                for event in events
                for endpoint in endpoints
                if endpoint.program_id == event.program_id
                and endpoint.created_at <= event.created_at
                and matches(endpoint.event_types, event.type)
            ]
            if rows:
                await session.execute(insert(WebhookMessage).values(rows).on_conflict_do_nothing())
        return True


class DeliveryQueue:
    name = "webhooks.deliver"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        keyring: Keyring,
        settings: Settings,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.keyring = keyring
        self.settings = settings
        self.client = client or httpx.AsyncClient(
            follow_redirects=False, timeout=settings.webhook_timeout_seconds
        )

    async def run_one(self) -> bool:
        async with self.sessionmaker() as session, session.begin():
            message = await self._claim(session)
            if message is None:
                return False
            endpoint = await session.get(WebhookEndpoint, message.endpoint_id)
            event = await session.get(Event, message.event_id)
            assert endpoint is not None
            assert event is not None
            if not endpoint.enabled or endpoint.deleted_at is not None:
                message.status = WebhookMessageStatus.FAILED
                message.last_error = "the subscription is disabled or deleted"
                return True
            await self._deliver(session, message, endpoint, event)
        return True

    async def _claim(self, session: AsyncSession) -> WebhookMessage | None:
        earlier = aliased(WebhookMessage)
        return await session.scalar(
            select(WebhookMessage)
            .where(
                WebhookMessage.status == WebhookMessageStatus.PENDING,
                WebhookMessage.next_attempt_at <= func.statement_timestamp(),
                ~exists().where(
                    and_(
                        earlier.endpoint_id == WebhookMessage.endpoint_id,
                        earlier.object_id == WebhookMessage.object_id,
                        earlier.status == WebhookMessageStatus.PENDING,
                        earlier.event_id < WebhookMessage.event_id,
                    )
                ),
            )
            .order_by(WebhookMessage.next_attempt_at)
            .limit(1)
            .with_for_update(skip_locked=True, of=WebhookMessage)
        )

    async def _deliver(
        self,
        session: AsyncSession,
        message: WebhookMessage,
        endpoint: WebhookEndpoint,
        event: Event,
    ) -> None:
        now = datetime.now(UTC)
        body = message_body(event)
        timestamp = int(now.timestamp())
        signatures = " ".join(
            sign(secret, event.id, timestamp, body)
            for secret in signing_secrets(self.keyring, endpoint, now)
        )
        headers = {
            "content-type": "application/json",
            "user-agent": "cardcore-webhooks/1",
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signatures,
        }
        started = time.perf_counter()
        status_code: int | None = None
        snippet: str | None = None
        error: str | None = None
        try:
            target = await pin(
                endpoint.url, allow_private=self.settings.webhooks_allow_private_networks
            )
            headers["host"] = target.host_header
            extensions: dict[str, Any] = (
                {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
            )
            response = await self.client.post(
                target.url, content=body, headers=headers, extensions=extensions
            )
            status_code = response.status_code
            # Whatever the receiver answers is kept, but NUL would make the attempt unstorable
            # (and the delivery retried forever).
            snippet = scrub(response.text[:SNIPPET_CHARS])
        except RefusedDestination as exc:
            error = f"refused: {exc}"
        except httpx.HTTPError as exc:
            error = scrub(f"{type(exc).__name__}: {exc}"[:SNIPPET_CHARS])
        latency_ms = int((time.perf_counter() - started) * 1000)
        success = status_code is not None and 200 <= status_code < 300
        if status_code is not None and 300 <= status_code < 400:
            error = "redirects are not followed"
        session.add(
            WebhookAttempt(
                program_id=message.program_id,
                message_id=message.id,
                endpoint_id=endpoint.id,
                event_id=event.id,
                url=endpoint.url,
                success=success,
                status_code=status_code,
                latency_ms=latency_ms,
                response_snippet=snippet,
                error=error,
            )
        )
        outcome = (
            "success"
            if success
            else ("refused" if error and error.startswith("refused") else "failure")
        )
        WEBHOOK_DELIVERIES.labels(outcome).inc()
        WEBHOOK_LATENCY.observe(latency_ms / 1000)
        message.attempts += 1
        message.last_attempt_at = now
        if success:
            message.status = WebhookMessageStatus.SUCCEEDED
            message.succeeded_at = now
            message.last_error = None
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
            return
        message.last_error = error or f"HTTP {status_code}"
        delay = retry_delay(message.attempts)
        if delay is None:
            message.status = WebhookMessageStatus.FAILED
        else:
            message.next_attempt_at = now + delay
        await self._note_failure(session, endpoint, now)

    async def _note_failure(
        self, session: AsyncSession, endpoint: WebhookEndpoint, now: datetime
    ) -> None:
        # Row-locked so two failing deliveries do not both disable it (and both emit the event).
        await session.refresh(endpoint, with_for_update=True)
        if endpoint.failing_since is None:
            endpoint.failing_since = now
            return
        if endpoint.enabled and now - endpoint.failing_since >= DISABLE_AFTER:
            endpoint.enabled = False
            endpoint.disabled_reason = "deliveries failed continuously for 5 days"
            record_event(
                session,
                program_id=endpoint.program_id,
                object_id=endpoint.id,
                data=WebhookDisabled(
                    webhook_id=endpoint.id,
                    url=endpoint.url,
                    failing_since=endpoint.failing_since.isoformat(),
                    reason=endpoint.disabled_reason,
                ),
            )
            log.warning("webhook_disabled", webhook_id=endpoint.id)
