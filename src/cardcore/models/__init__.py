"""Every ORM model, imported here so Alembic's autogenerate sees them all."""

from cardcore.models.audit import AuditLog
from cardcore.models.auth import (
    CardholderSession,
    Credential,
    JwsRequestId,
    RefreshToken,
    ServerKey,
)
from cardcore.models.balances import Balance, MoneyTransfer, PartnerBalance, PaymentContact
from cardcore.models.base import Base
from cardcore.models.cards import (
    Card,
    CardProduct,
    CardReport,
    CardRequest,
    CardSpend,
    CardStatus,
    CompromisedPan,
    PanDataKey,
    PhysicalRequest,
    ReportStatus,
    RequestStatus,
    ZonePinKey,
)
from cardcore.models.customers import (
    Address,
    Corporation,
    CorporationEmployee,
    KycDocument,
    User,
    VerificationHistory,
    VerificationStatus,
)
from cardcore.models.events import Event
from cardcore.models.fees import Fee, FeeRefund, FeeSchedule, FeeStatus
from cardcore.models.idempotency import IdempotencyRecord
from cardcore.models.jobs import Job
from cardcore.models.ledger import LedgerAccount, LedgerAccountDelta, LedgerTransfer
from cardcore.models.programs import AdminUser, ApiKey, Program, ProgramMode
from cardcore.models.transactions import (
    CardTransaction,
    CardTransactionEvent,
    FxRate,
    TransactionStatus,
)
from cardcore.models.webhooks import WebhookAttempt, WebhookEndpoint, WebhookMessage

__all__ = [
    "Address",
    "AdminUser",
    "ApiKey",
    "AuditLog",
    "Balance",
    "Base",
    "Card",
    "CardProduct",
    "CardReport",
    "CardRequest",
    "CardSpend",
    "CardStatus",
    "CardTransaction",
    "CardTransactionEvent",
    "CardholderSession",
    "CompromisedPan",
    "Corporation",
    "CorporationEmployee",
    "Credential",
    "Event",
    "Fee",
    "FeeRefund",
    "FeeSchedule",
    "FeeStatus",
    "FxRate",
    "IdempotencyRecord",
    "Job",
    "JwsRequestId",
    "KycDocument",
    "LedgerAccount",
    "LedgerAccountDelta",
    "LedgerTransfer",
    "MoneyTransfer",
    "PanDataKey",
    "PartnerBalance",
    "PaymentContact",
    "PhysicalRequest",
    "Program",
    "ProgramMode",
    "RefreshToken",
    "ReportStatus",
    "RequestStatus",
    "ServerKey",
    "TransactionStatus",
    "User",
    "VerificationHistory",
    "VerificationStatus",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
    "ZonePinKey",
]
