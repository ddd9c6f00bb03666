"""A receiver's answer is kept in the delivery log whatever it holds. NUL in it made the attempt
row unstorable: the delivery failed in the database and was tried again, for ever."""

from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.jobs import Worker
from cardcore.models import WebhookMessage
from tests.factories import Partner
from tests.webhooks.helpers import make_key, subscribe
from tests.webhooks.receiver import running_receiver


async def test_a_reply_with_nul_is_logged_and_the_delivery_done(
    client: AsyncClient, partner: Partner, worker: Worker, session: AsyncSession
) -> None:
    with running_receiver(reply=b"ok\x00\x00binary") as receiver:
        hook = await subscribe(client, partner, receiver.url)
        await make_key(client, partner)
        await worker.drain()
        assert len(receiver.received) == 1
    message = await session.scalar(select(WebhookMessage))
    assert message is not None
    await session.refresh(message)
    assert message.status == "succeeded"
    log = await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=partner.headers)
    [attempt] = log.json()["data"]
    assert (attempt["success"], attempt["status_code"]) == (True, 200)
    assert attempt["response_snippet"] == "ok\ufffd\ufffdbinary"
