from cardcore.kit.outbox import EventData, event_type


class FeeEventData(EventData):
    fee_id: str
    type: str
    amount: int
    currency: str
    balance_id: str
    card_id: str | None
    transaction_id: str | None
    money_transfer_id: str | None


@event_type("fee.charged", "A fee was taken from a balance into the program's fee revenue.")
class FeeCharged(FeeEventData):
    ledger_transfer_id: str


@event_type("fee.waived", "A fee fell due and a waiver rule spared it.")
class FeeWaived(FeeEventData):
    rule: str


@event_type(
    "fee.skipped",
    "A fee could not be taken (the balance could not pay it) and will not be retried.",
)
class FeeSkipped(FeeEventData):
    reason: str


@event_type("fee.refunded", "Ops paid all or part of a fee back to the balance.")
class FeeRefunded(FeeEventData):
    refund_id: str
    refunded_amount: int
