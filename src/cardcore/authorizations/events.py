from cardcore.kit.outbox import EventData, event_type


@event_type(
    "authorization.decided",
    "A card authorization was approved (money held) or declined (with the rule that declined).",
)
class AuthorizationDecided(EventData):
    transaction_id: str
    card_id: str
    approved: bool
    response_code: str
    decline_reason: str | None
    amount: int
    currency: str


@event_type("authorization.updated", "An authorization was reversed (in part) or cleared.")
class AuthorizationUpdated(EventData):
    transaction_id: str
    kind: str
    status: str
    amount: int
    held_amount: int
