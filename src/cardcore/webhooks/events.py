from cardcore.kit.outbox import EventData, event_type


@event_type("webhook.test", "Sent by POST /v1/webhooks/{id}/test, to that subscription only.")
class WebhookTest(EventData):
    webhook_id: str


@event_type(
    "webhook.disabled",
    "A subscription was disabled after its deliveries failed continuously for 5 days.",
)
class WebhookDisabled(EventData):
    webhook_id: str
    url: str
    failing_since: str
    reason: str
