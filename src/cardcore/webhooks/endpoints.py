"""Webhook subscriptions, their delivery logs, replays, and the event type catalog."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Path, Query, status

from cardcore.config import Settings
from cardcore.events.repository import EventRepository
from cardcore.kit.access import Partner
from cardcore.kit.app_state import KeyringDep, SettingsDep
from cardcore.kit.envelope import ListMeta, Many, One
from cardcore.kit.errors import error_responses
from cardcore.kit.inputs import Timestamp
from cardcore.kit.outbox import catalog
from cardcore.kit.pagination import Pagination
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import WebhookMessageStatus
from cardcore.webhooks import service
from cardcore.webhooks.repository import AttemptRepository, MessageRepository, WebhookRepository
from cardcore.webhooks.schemas import (
    AttemptOut,
    EventTypeOut,
    MessageOut,
    RecoverResult,
    WebhookCreate,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)
from cardcore.webhooks.ssrf import check_url

routes = router(
    tags=["webhooks"],
    encryption="optional",
)

WebhookId = Annotated[str, Path(description="A webhook subscription id (`whk_…`).")]


def _checked_url(settings: Settings, url: str) -> str:
    check_url(
        url,
        allow_http=settings.webhooks_allow_http,
        allow_private=settings.webhooks_allow_private_networks,
    )
    return url


@routes.get("/v1/event-types", summary="Every event type, with its payload's JSON Schema")
async def event_types(principal: Partner) -> Many[EventTypeOut]:
    entries = [EventTypeOut.model_validate(entry) for entry in catalog()]
    return Many(data=entries, meta=ListMeta(next_cursor=None, has_more=False))


@routes.post(
    "/v1/webhooks",
    summary="Subscribe to events",
    description="The secret is returned once: keep it to verify our signatures.",
    status_code=status.HTTP_201_CREATED,
)
async def create_webhook(
    body: WebhookCreate,
    principal: Partner,
    session: DbSession,
    keyring: KeyringDep,
    settings: SettingsDep,
) -> One[WebhookWithSecret]:
    endpoint, secret = await service.create_endpoint(
        session,
        keyring,
        program_id=principal.tenant_id,
        url=_checked_url(settings, body.url),
        event_types=body.event_types,
        description=body.description,
        enabled=body.enabled,
    )
    await session.refresh(endpoint)
    out = WebhookOut.model_validate(endpoint).model_dump()
    return One(data=WebhookWithSecret(**out, secret=secret))


@routes.get("/v1/webhooks", summary="List webhook subscriptions")
async def list_webhooks(
    principal: Partner, session: DbSession, page: Pagination
) -> Many[WebhookOut]:
    repository = WebhookRepository(session, principal.tenant_id)
    endpoints, meta = await repository.page(repository.readable(), page)
    return Many(data=[WebhookOut.model_validate(e) for e in endpoints], meta=meta)


@routes.get(
    "/v1/webhooks/{webhook_id}",
    summary="Get a subscription",
    responses=error_responses("NOT_FOUND"),
)
async def get_webhook(
    webhook_id: WebhookId, principal: Partner, session: DbSession
) -> One[WebhookOut]:
    endpoint = await WebhookRepository(session, principal.tenant_id).get_or_404(webhook_id)
    return One(data=WebhookOut.model_validate(endpoint))


@routes.patch(
    "/v1/webhooks/{webhook_id}",
    summary="Change a subscription",
    responses=error_responses("NOT_FOUND"),
)
async def update_webhook(
    webhook_id: WebhookId,
    body: WebhookUpdate,
    principal: Partner,
    session: DbSession,
    settings: SettingsDep,
) -> One[WebhookOut]:
    endpoint = await WebhookRepository(session, principal.tenant_id).get_or_404(
        webhook_id, for_update=True
    )
    if body.url is not None:
        endpoint.url = _checked_url(settings, body.url)
    if body.event_types is not None:
        endpoint.event_types = service.check_event_types(body.event_types)
    if body.description is not None:
        endpoint.description = body.description
    if body.enabled is not None:
        if body.enabled and not endpoint.enabled:
            endpoint.failing_since = None
            endpoint.disabled_reason = None
        endpoint.enabled = body.enabled
    await session.flush()
    await session.refresh(endpoint)
    return One(data=WebhookOut.model_validate(endpoint))


@routes.delete(
    "/v1/webhooks/{webhook_id}",
    summary="Delete a subscription",
    description="Nothing more is sent to it, including messages still waiting.",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses("NOT_FOUND"),
)
async def delete_webhook(webhook_id: WebhookId, principal: Partner, session: DbSession) -> None:
    endpoint = await WebhookRepository(session, principal.tenant_id).get_or_404(
        webhook_id, for_update=True
    )
    endpoint.enabled = False
    endpoint.deleted_at = datetime.now(UTC)
    await session.flush()


@routes.post(
    "/v1/webhooks/{webhook_id}/rotate-secret",
    summary="Rotate the signing secret",
    description="Returns the new secret once. For 24 hours both the old and the new secret "
    "sign every message (two `v1,` signatures), so a receiver can switch without a gap.",
    responses=error_responses("NOT_FOUND"),
)
async def rotate_secret(
    webhook_id: WebhookId, principal: Partner, session: DbSession, keyring: KeyringDep
) -> One[WebhookWithSecret]:
    endpoint = await WebhookRepository(session, principal.tenant_id).get_or_404(
        webhook_id, for_update=True
    )
    secret = await service.rotate_secret(session, keyring, endpoint)
    await session.refresh(endpoint)
    out = WebhookOut.model_validate(endpoint).model_dump()
    return One(data=WebhookWithSecret(**out, secret=secret))


@routes.post(
    "/v1/webhooks/{webhook_id}/test",
    summary="Send a webhook.test event to this subscription",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses("NOT_FOUND"),
)
async def test_webhook(
    webhook_id: WebhookId, principal: Partner, session: DbSession
) -> One[MessageOut]:
    endpoint = await WebhookRepository(session, principal.tenant_id).get_or_404(webhook_id)
    message = await service.send_test(session, endpoint)
    await session.refresh(message)
    return One(data=MessageOut.model_validate(message))


@routes.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    summary="Delivery attempts to this subscription, newest first",
    responses=error_responses("NOT_FOUND"),
)
async def webhook_deliveries(
    webhook_id: WebhookId, principal: Partner, session: DbSession, page: Pagination
) -> Many[AttemptOut]:
    await WebhookRepository(session, principal.tenant_id).get_or_404(webhook_id)
    repository = AttemptRepository(session, principal.tenant_id)
    attempts, meta = await repository.page(repository.of_endpoint(webhook_id), page)
    return Many(data=[AttemptOut.model_validate(a) for a in attempts], meta=meta)


@routes.get(
    "/v1/events/{event_id}/deliveries",
    summary="Delivery attempts of one event, to every subscription",
    responses=error_responses("NOT_FOUND"),
)
async def event_deliveries(
    event_id: Annotated[str, Path(description="An event id (`evt_…`).")],
    principal: Partner,
    session: DbSession,
    page: Pagination,
) -> Many[AttemptOut]:
    await EventRepository(session, principal.tenant_id).get_or_404(event_id)
    repository = AttemptRepository(session, principal.tenant_id)
    attempts, meta = await repository.page(repository.of_event(event_id), page)
    return Many(data=[AttemptOut.model_validate(a) for a in attempts], meta=meta)


@routes.get(
    "/v1/webhooks/{webhook_id}/messages",
    summary="Messages for this subscription (pending, succeeded, failed), newest first",
    responses=error_responses("NOT_FOUND"),
)
async def webhook_messages(
    webhook_id: WebhookId,
    principal: Partner,
    session: DbSession,
    page: Pagination,
    message_status: Annotated[WebhookMessageStatus | None, Query(alias="status")] = None,
) -> Many[MessageOut]:
    await WebhookRepository(session, principal.tenant_id).get_or_404(webhook_id)
    repository = MessageRepository(session, principal.tenant_id)
    messages, meta = await repository.page(repository.of_endpoint(webhook_id, message_status), page)
    return Many(data=[MessageOut.model_validate(m) for m in messages], meta=meta)


@routes.post(
    "/v1/webhook-messages/{message_id}/retry",
    summary="Send a message again now",
    description="Works whatever its status; a succeeded message is delivered once more.",
    responses=error_responses("NOT_FOUND"),
)
async def retry_message(
    message_id: Annotated[str, Path(description="A webhook message id (`msg_…`).")],
    principal: Partner,
    session: DbSession,
) -> One[MessageOut]:
    repository = MessageRepository(session, principal.tenant_id)
    message = await repository.get_or_404(message_id, for_update=True)
    await service.retry_message(session, message)
    return One(data=MessageOut.model_validate(message))


@routes.post(
    "/v1/webhooks/{webhook_id}/recover",
    summary="Send again everything that failed since a time",
    responses=error_responses("NOT_FOUND"),
)
async def recover(
    webhook_id: WebhookId,
    since: Annotated[Timestamp, Query(description="Failed messages created at or after this.")],
    principal: Partner,
    session: DbSession,
) -> One[RecoverResult]:
    endpoint = await WebhookRepository(session, principal.tenant_id).get_or_404(webhook_id)
    return One(data=RecoverResult(requeued=await service.recover(session, endpoint, since)))
