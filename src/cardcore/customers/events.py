from cardcore.kit.outbox import EventData, event_type


@event_type("user.created", "A cardholder (user) was created.")
class UserCreated(EventData):
    id: str
    external_reference: str | None


@event_type("user.updated", "A user's contact details or reference changed.")
class UserUpdated(EventData):
    id: str
    fields: list[str]


@event_type("user.closed", "A user was closed for good.")
class UserClosed(EventData):
    id: str


@event_type("kyc.status_changed", "A user's KYC status changed.")
class KycStatusChanged(EventData):
    user_id: str
    from_status: str
    to_status: str
    reason: str | None
    decided_by: str


@event_type("corporation.created", "A corporation was created.")
class CorporationCreated(EventData):
    id: str
    legal_name: str
    country: str


@event_type("kyb.status_changed", "A corporation's KYB status changed.")
class KybStatusChanged(EventData):
    corporation_id: str
    from_status: str
    to_status: str
    reason: str | None
    decided_by: str


@event_type("corporation.employee_added", "A user was linked to a corporation as an employee.")
class EmployeeAdded(EventData):
    corporation_id: str
    user_id: str
