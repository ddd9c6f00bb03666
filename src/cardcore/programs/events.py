from cardcore.kit.outbox import EventData, event_type


@event_type("api_key.created", "An API key was created (the secret is never in an event).")
class ApiKeyCreated(EventData):
    id: str
    name: str
    kind: str
    prefix: str


@event_type("api_key.revoked", "An API key was revoked and stopped working.")
class ApiKeyRevoked(EventData):
    id: str
    name: str
    revoked_at: str
