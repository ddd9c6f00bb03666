from cardcore.kit.outbox import EventData, event_type


@event_type("balance.created", "A balance was opened for a user or corporation.")
class BalanceCreated(EventData):
    id: str
    owner_type: str
    owner_id: str
    currency: str


@event_type("balance.status_changed", "A balance was blocked, unblocked or closed.")
class BalanceStatusChanged(EventData):
    id: str
    from_status: str
    to_status: str


@event_type("balance.reloaded", "Money was added to a balance from the partner's credit balance.")
class BalanceReloaded(EventData):
    balance_id: str
    amount: int
    currency: str
    ledger_transfer_id: str


@event_type("partner_balance.reloaded", "Ops recorded money received for a partner balance.")
class PartnerBalanceReloaded(EventData):
    partner_balance_id: str
    amount: int
    currency: str


@event_type("partner_balance.low", "A partner balance fell below its low-balance threshold.")
class PartnerBalanceLow(EventData):
    partner_balance_id: str
    type: str
    currency: str
    available: int
    threshold: int


@event_type("transfer.created", "A money transfer was created.")
class TransferCreated(EventData):
    id: str
    type: str
    status: str
    amount: int
    currency: str


@event_type("transfer.completed", "A money transfer completed.")
class TransferCompleted(EventData):
    id: str
    amount: int
    currency: str


@event_type("transfer.failed", "A money transfer failed; its hold was released.")
class TransferFailed(EventData):
    id: str
    reason: str | None
