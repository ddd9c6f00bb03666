"""Every ORM model, imported here so Alembic's autogenerate sees them all."""

from cardcore.models.audit import AuditLog
from cardcore.models.auth import (
    CardholderSession,
    Credential,
    JwsRequestId,
    RefreshToken,
    ServerKey,
)
from cardcore.models.balances import (
    Balance,
    BalanceStatus,
    MoneyTransfer,
    PartnerBalance,
    PaymentContact,
    TransferStatus,
)
from cardcore.models.base import Base
from cardcore.models.cards import (
    Card,
    CardProduct,
    CardReport,
    CardRequest,
    CardSpend,
    CardStatus,
    CompromisedPan,
    FulfillmentStatus,
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
    CustomerStatus,
    KycDocument,
    User,
    VerificationHistory,
    VerificationStatus,
)
from cardcore.models.events import Event
from cardcore.models.fees import Fee, FeeRefund, FeeSchedule, FeeStatus
from cardcore.models.idempotency import IdempotencyRecord
from cardcore.models.jobs import Job, JobStatus
from cardcore.models.ledger import LedgerAccount, LedgerAccountDelta, LedgerTransfer
from cardcore.models.programs import AdminUser, ApiKey, Program, ProgramMode, ProgramStatus
from cardcore.models.transactions import (
    CardTransaction,
    CardTransactionEvent,
    FxRate,
    TransactionStatus,
)
from cardcore.models.webhooks import (
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
    WebhookMessageStatus,
)

__all__ = [
    "Address",
    "AdminUser",
    "ApiKey",
    "AuditLog",
    "Balance",
    "BalanceStatus",
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
    "CustomerStatus",
    "Event",
    "Fee",
    "FeeRefund",
    "FeeSchedule",
    "FeeStatus",
    "FulfillmentStatus",
    "FxRate",
    "IdempotencyRecord",
    "Job",
    "JobStatus",
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
    "ProgramStatus",
    "RefreshToken",
    "ReportStatus",
    "RequestStatus",
    "ServerKey",
    "TransactionStatus",
    "TransferStatus",
    "User",
    "VerificationHistory",
    "VerificationStatus",
    "WebhookAttempt",
    "WebhookEndpoint",
    "WebhookMessage",
    "WebhookMessageStatus",
    "ZonePinKey",
]
