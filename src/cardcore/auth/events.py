from cardcore.kit.outbox import EventData, event_type


@event_type("credential.created", "An OAuth client or JWS credential was created.")
class CredentialCreated(EventData):
    id: str
    type: str
    name: str


@event_type(
    "credential.revoked", "A credential was revoked; it and every token from it stopped working."
)
class CredentialRevoked(EventData):
    id: str
    type: str
    name: str
