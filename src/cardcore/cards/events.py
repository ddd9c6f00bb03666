from cardcore.kit.outbox import EventData, event_type


@event_type("card.created", "A card was issued (virtual and gift cards are ACTIVE at once).")
class CardCreated(EventData):
    id: str
    type: str
    status: str
    masked_pan: str
    balance_id: str
    user_id: str


@event_type("card.status_changed", "A card's status changed (activation, lock, freeze, close…).")
class CardStatusChanged(EventData):
    id: str
    from_status: str
    to_status: str
    reason: str | None
    actor: str = "partner"
    lock_reason: int | None = None


@event_type(
    "card.fulfillment_changed",
    "A physical card moved on its journey: ordered, in issuance, manufactured, shipped, delivered.",
)
class CardFulfillmentChanged(EventData):
    id: str
    from_status: str
    to_status: str
    carrier: str | None
    tracking_number: str | None


@event_type("card.request_completed", "An asynchronous card request finished (card or error).")
class CardRequestCompleted(EventData):
    request_id: str
    status: str
    card_id: str | None
    error_code: str | None
