"""Webhook delivery against a real HTTP receiver on loopback."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from cardcore.config import Settings
from cardcore.kit.jobs import Worker
from cardcore.models import Event, WebhookEndpoint, WebhookMessage
from cardcore.webhooks.delivery import DeliveryQueue
from tests.factories import Partner
from tests.webhooks.helpers import make_key, subscribe
from tests.webhooks.receiver import Receiver, running_receiver


async def test_signed_delivery_verifies_with_standardwebhooks(
    client: AsyncClient, partner: Partner, worker: Worker, receiver: Receiver
) -> None:
    hook = await subscribe(client, partner, receiver.url)
    key_id = await make_key(client, partner)
    await worker.drain()

    assert len(receiver.received) == 1, "the bootstrap key's event predates the subscription"
    sent = receiver.received[0]
    payload = Webhook(hook["secret"]).verify(sent.body, sent.headers)
    assert payload["type"] == "api_key.created"
    assert payload["object_id"] == key_id
    assert payload["program_id"] == partner.program_id
    assert payload["data"]["id"] == key_id
    assert payload["version"] == 1
    assert sent.headers["webhook-id"] == payload["id"]
    assert payload["id"].startswith("evt_")
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(sent.body.replace(b"api_key", b"api_kez"), sent.headers)

    deliveries = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=partner.headers)
    [attempt] = deliveries.json()["data"]
    assert (attempt["success"], attempt["status_code"], attempt["event_id"]) == (
        True,
        200,
        payload["id"],
    )
    by_event = await client.get(f"/v1/events/{payload['id']}/deliveries", headers=partner.headers)
    assert [a["id"] for a in by_event.json()["data"]] == [attempt["id"]]


async def _make_due(session: AsyncSession) -> None:
    await session.execute(
        update(WebhookMessage)
        .where(WebhookMessage.status == "pending")
        .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    await session.commit()


async def test_a_failure_is_retried_later_then_succeeds(
    client: AsyncClient, partner: Partner, worker: Worker, session: AsyncSession
) -> None:
    with running_receiver(statuses=[500]) as receiver:
        hook = await subscribe(client, partner, receiver.url)
        await make_key(client, partner)
        await worker.drain()
        assert len(receiver.received) == 1
        message = await session.scalar(select(WebhookMessage))
        assert message is not None
        await session.refresh(message)
        assert (message.status, message.attempts) == ("pending", 1)
        wait = message.next_attempt_at - datetime.now(UTC)
        assert timedelta(seconds=3) < wait < timedelta(seconds=6), "first retry after ~5 s"

        await worker.drain()
        assert len(receiver.received) == 1, "not due yet"
        await _make_due(session)
        await worker.drain()
        assert len(receiver.received) == 2
        assert (
            receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
        )
    await session.refresh(message)
    assert message.status == "succeeded"
    log = (
        await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=partner.headers)
    ).json()
    assert [a["status_code"] for a in log["data"]] == [200, 500]


async def test_events_of_one_object_arrive_in_order(
    client: AsyncClient, partner: Partner, worker: Worker, session: AsyncSession
) -> None:
    with running_receiver(statuses=[500]) as receiver:
        await subscribe(client, partner, receiver.url, ["api_key.*"])
        key_id = await make_key(client, partner)
        await client.delete(f"/v1/api-keys/{key_id}", headers=partner.headers)
        await worker.drain()
        # The creation failed; its revocation must wait for it.
        assert [json.loads(r.body)["type"] for r in receiver.received] == ["api_key.created"]
        await _make_due(session)
        await worker.drain()
        assert [json.loads(r.body)["type"] for r in receiver.received] == [
            "api_key.created",
            "api_key.created",
            "api_key.revoked",
        ]


async def test_subscriptions_filter_by_type_and_prefix(
    client: AsyncClient, partner: Partner, worker: Worker, receiver: Receiver
) -> None:
    await subscribe(client, partner, receiver.url, ["credential.*"])
    await make_key(client, partner)
    await client.post("/v1/credentials", json={"type": "jws", "name": "x"}, headers=partner.headers)
    await worker.drain()
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["credential.created"]
    bad = await client.post(
        "/v1/webhooks",
        json={"url": receiver.url, "event_types": ["card.crated"]},
        headers=partner.headers,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["code"] == "UNKNOWN_EVENT_TYPE"


async def test_rotation_signs_with_both_secrets_for_a_day(
    client: AsyncClient,
    partner: Partner,
    worker: Worker,
    receiver: Receiver,
    session: AsyncSession,
) -> None:
    hook = await subscribe(client, partner, receiver.url)
    rotated = await client.post(f"/v1/webhooks/{hook['id']}/rotate-secret", headers=partner.headers)
    new_secret = rotated.json()["data"]["secret"]
    assert new_secret != hook["secret"]
    await make_key(client, partner)
    await worker.drain()
    sent = receiver.received[-1]
    assert len(sent.headers["webhook-signature"].split(" ")) == 2
    for secret in (hook["secret"], new_secret):
        Webhook(secret).verify(sent.body, sent.headers)

    await session.execute(
        update(WebhookEndpoint).values(previous_secret_expires_at=datetime.now(UTC))
    )
    await session.commit()
    await make_key(client, partner, "later")
    await worker.drain()
    later = receiver.received[-1]
    assert len(later.headers["webhook-signature"].split(" ")) == 1
    Webhook(new_secret).verify(later.body, later.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(hook["secret"]).verify(later.body, later.headers)


async def test_ssrf_guard_refuses_private_destinations(
    client: AsyncClient,
    partner: Partner,
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    app: FastAPI,
    session: AsyncSession,
    receiver: Receiver,
) -> None:
    # With production settings the API refuses such URLs outright...
    strict = settings.model_copy(update={"webhooks_allow_http": False})
    app.state.settings = strict
    for url, code in (
        (receiver.url, "INSECURE_URL"),
        ("https://127.0.0.1/hook", "PRIVATE_ADDRESS"),
        ("https://[::1]/hook", "PRIVATE_ADDRESS"),
        ("https://169.254.169.254/latest/meta-data", "PRIVATE_ADDRESS"),
        ("https://10.1.2.3/hook", "PRIVATE_ADDRESS"),
        ("https://localhost/hook", "PRIVATE_ADDRESS"),
        ("https://user:pw@example.com/hook", "INVALID_URL"),
    ):
        response = await client.post("/v1/webhooks", json={"url": url}, headers=partner.headers)
        assert response.status_code == 422, url
        assert response.json()["errors"][0]["code"] == code, url
        # A developer refused for http or a local receiver learns which setting allows it.
        setting = {
            "INSECURE_URL": "CARDCORE_WEBHOOKS_ALLOW_HTTP=true",
            "PRIVATE_ADDRESS": "CARDCORE_WEBHOOKS_ALLOW_PRIVATE_NETWORKS=true",
        }.get(code)
        if setting is not None:
            assert setting in response.json()["errors"][0]["message"], url

    # ...and a host name that resolves to one is refused at send time, nothing is sent.
    app.state.settings = settings.model_copy(
        update={"webhooks_allow_http": True, "webhooks_allow_private_networks": True}
    )
    host_url = receiver.url.replace("127.0.0.1", "localhost")
    await subscribe(client, partner, host_url.replace("http://localhost", "http://localhost"))
    await make_key(client, partner)
    from cardcore.webhooks.delivery import FanOutQueue

    await FanOutQueue(sessionmaker).run_one()
    production_like = settings.model_copy(update={"webhooks_allow_private_networks": False})
    queue = DeliveryQueue(sessionmaker, app.state.keyring, production_like)
    assert await queue.run_one()
    assert receiver.received == []
    message = await session.scalar(select(WebhookMessage))
    assert message is not None
    await session.refresh(message)
    assert message.last_error is not None
    assert message.last_error.startswith("refused")


async def test_redirects_are_not_followed(
    client: AsyncClient, partner: Partner, worker: Worker, session: AsyncSession
) -> None:
    with running_receiver(statuses=[302]) as receiver:
        await subscribe(client, partner, receiver.url)
        await make_key(client, partner)
        await worker.drain()
        assert [r.path for r in receiver.received] == ["/hook"]
    message = await session.scalar(select(WebhookMessage))
    assert message is not None
    await session.refresh(message)
    assert (message.status, message.last_error) == ("pending", "redirects are not followed")


async def test_five_days_of_failure_disable_the_subscription(
    client: AsyncClient, partner: Partner, worker: Worker, session: AsyncSession
) -> None:
    with running_receiver(statuses=[500, 500]) as receiver:
        hook = await subscribe(client, partner, receiver.url, ["api_key.*"])
        await make_key(client, partner)
        await worker.drain()
        # Time moves forward: it has been failing for six days.
        await session.execute(
            update(WebhookEndpoint).values(failing_since=datetime.now(UTC) - timedelta(days=6))
        )
        await session.commit()
        await _make_due(session)
        await worker.drain()
    shown = (await client.get(f"/v1/webhooks/{hook['id']}", headers=partner.headers)).json()["data"]
    assert shown["enabled"] is False
    assert "5 days" in shown["disabled_reason"]
    disabled = await session.scalar(select(Event).where(Event.type == "webhook.disabled"))
    assert disabled is not None
    assert disabled.data["webhook_id"] == hook["id"]
    # Enabling it again clears the failure state.
    enabled = await client.patch(
        f"/v1/webhooks/{hook['id']}", json={"enabled": True}, headers=partner.headers
    )
    assert enabled.json()["data"]["failing_since"] is None


async def test_a_success_clears_the_failure_clock(
    client: AsyncClient, partner: Partner, worker: Worker, session: AsyncSession
) -> None:
    with running_receiver(statuses=[500]) as receiver:
        hook = await subscribe(client, partner, receiver.url)
        await make_key(client, partner)
        await worker.drain()
        endpoint = await session.get(WebhookEndpoint, hook["id"])
        assert endpoint is not None
        await session.refresh(endpoint)
        assert endpoint.failing_since is not None
        await _make_due(session)
        await worker.drain()
        await session.refresh(endpoint)
        assert endpoint.failing_since is None


async def test_the_test_event_goes_to_one_subscription(
    client: AsyncClient, partner: Partner, worker: Worker
) -> None:
    with running_receiver() as first, running_receiver() as second:
        hook = await subscribe(client, partner, first.url)
        await subscribe(client, partner, second.url)
        response = await client.post(f"/v1/webhooks/{hook['id']}/test", headers=partner.headers)
        assert response.status_code == 202
        await worker.drain()
        assert [json.loads(r.body)["type"] for r in first.received] == ["webhook.test"]
        assert second.received == []


async def test_retry_and_recover(
    client: AsyncClient, partner: Partner, worker: Worker, session: AsyncSession
) -> None:
    with running_receiver() as receiver:
        hook = await subscribe(client, partner, receiver.url)
        await make_key(client, partner, "a")
        await make_key(client, partner, "b")
        await worker.drain()
        assert len(receiver.received) == 2
        messages = (
            await client.get(f"/v1/webhooks/{hook['id']}/messages", headers=partner.headers)
        ).json()["data"]
        assert {m["status"] for m in messages} == {"succeeded"}

        retried = await client.post(
            f"/v1/webhook-messages/{messages[0]['id']}/retry", headers=partner.headers
        )
        assert retried.json()["data"]["status"] == "pending"
        await worker.drain()
        assert len(receiver.received) == 3

        await session.execute(update(WebhookMessage).values(status="failed"))
        await session.commit()
        since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
        recovered = await client.post(
            f"/v1/webhooks/{hook['id']}/recover", params={"since": since}, headers=partner.headers
        )
        assert recovered.json()["data"] == {"requeued": 2}
        await worker.drain()
        assert len(receiver.received) == 5


async def test_another_programs_webhooks_are_404(
    client: AsyncClient, partner: Partner, other_partner: Partner, receiver: Receiver
) -> None:
    hook = await subscribe(client, partner, receiver.url)
    for method, path in (
        ("GET", f"/v1/webhooks/{hook['id']}"),
        ("PATCH", f"/v1/webhooks/{hook['id']}"),
        ("DELETE", f"/v1/webhooks/{hook['id']}"),
        ("POST", f"/v1/webhooks/{hook['id']}/test"),
        ("POST", f"/v1/webhooks/{hook['id']}/rotate-secret"),
        ("GET", f"/v1/webhooks/{hook['id']}/deliveries"),
    ):
        response = await client.request(
            method, path, json={} if method == "PATCH" else None, headers=other_partner.headers
        )
        assert response.status_code == 404, path
    listed = await client.get("/v1/webhooks", headers=other_partner.headers)
    assert listed.json()["data"] == []


async def test_deleted_subscription_gets_nothing_more(
    client: AsyncClient, partner: Partner, worker: Worker, receiver: Receiver
) -> None:
    hook = await subscribe(client, partner, receiver.url)
    await make_key(client, partner)
    assert (
        await client.delete(f"/v1/webhooks/{hook['id']}", headers=partner.headers)
    ).status_code == 204
    await worker.drain()
    assert receiver.received == []
    assert (
        await client.get(f"/v1/webhooks/{hook['id']}", headers=partner.headers)
    ).status_code == 404


async def test_catalog_lists_every_event_type_with_its_schema(
    client: AsyncClient, partner: Partner
) -> None:
    response = await client.get("/v1/event-types", headers=partner.headers)
    entries = {e["type"]: e for e in response.json()["data"]}
    for name in ("api_key.created", "credential.revoked", "webhook.test", "webhook.disabled"):
        assert name in entries
    created = entries["api_key.created"]
    assert created["version"] == 1
    assert set(created["schema"]["properties"]) == {"id", "name", "kind", "prefix"}


async def test_metrics_report_deliveries_and_backlog(
    client: AsyncClient, partner: Partner, worker: Worker, receiver: Receiver
) -> None:
    await subscribe(client, partner, receiver.url)
    await make_key(client, partner)
    backlog = (await client.get("/metrics")).text
    assert "cardcore_webhook_oldest_undelivered_seconds" in backlog
    await worker.drain()
    text = (await client.get("/metrics")).text
    assert 'cardcore_webhook_deliveries_total{outcome="success"}' in text
    assert "cardcore_webhook_delivery_duration_seconds_bucket" in text
