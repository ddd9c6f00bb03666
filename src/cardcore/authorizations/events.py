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


@event_type(
    "authorization.updated",
    "An authorization was raised, reversed (in part), cleared or refunded, or a force-post "
    "clearing arrived without one.",
)
class AuthorizationUpdated(EventData):
    transaction_id: str
    kind: str
    status: str
    amount: int
    held_amount: int


@event_type(
    "authorization.expired",
    "The network never cleared an authorization: its hold was released after the program's "
    "hold_expiry_days.",
)
class AuthorizationExpired(EventData):
    transaction_id: str
    card_id: str
    released_amount: int
