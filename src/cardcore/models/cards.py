"""Card products, cards, the PAN vault's data keys, and asynchronous card requests.

No column holds a PAN in clear: `pan_ciphertext` is AES-256-GCM under a versioned data key,
`pan_hash` a keyed HMAC for lookups and uniqueness, and only the BIN and last four are plain.
CVV2 and PIN are never stored: the CVV2 is derived when needed, the PIN kept only as a keyed hash.
"""

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cardcore.models.base import Base, CreatedAt, Status
from cardcore.models.ids import PrefixedId, new_id


# The docstrings of these enums are the API's descriptions of them (OpenAPI); the transitions
# are in cards/lifecycle.py, cards/reports.py and cards/physical_requests.py.
class CardStatus(StrEnum):
    """Where a card is in its life."""

    INACTIVE = "INACTIVE"  # a physical card not yet activated
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"  # by its holder or partner, and back
    LOCKED = "LOCKED"  # with a reason code; some locks are for good
    CLOSED = "CLOSED"
    EXPIRED = "EXPIRED"


# A live card may still change status (cards/lifecycle.py has the transitions), a terminal one
# never does. Here, beside the statuses, because more than the lifecycle asks which is which:
# periodic fees, for one, are not charged to a terminal card.
LIVE_STATUSES = (CardStatus.INACTIVE, CardStatus.ACTIVE, CardStatus.FROZEN, CardStatus.LOCKED)
TERMINAL_STATUSES = (CardStatus.CLOSED, CardStatus.EXPIRED)


class ReportStatus(StrEnum):
    """Where a lost, stolen or damaged card's report is."""

    OPEN = "OPEN"
    SUPERSEDED = "SUPERSEDED"  # a later report about the same card took its place
    REPLACED = "REPLACED"  # answered with a replacement card
    RENEWED = "RENEWED"  # answered by renewing the card under its number
    DECLINED = "DECLINED"


class RequestStatus(StrEnum):
    """Where a request waiting on someone else is: an asynchronous issuance, or a physical
    card asked for by its holder and waiting on the partner's decision."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"  # issuance: the card exists
    FAILED = "FAILED"  # issuance: refused, with its error
    APPROVED = "APPROVED"  # physical card: the partner agreed
    REJECTED = "REJECTED"  # physical card: the partner refused


class FulfillmentStatus(StrEnum):
    """Where a physical card's plastic is, from its order to its holder."""

    ORDERED = "ORDERED"
    ISSUANCE_IN_PROGRESS = "ISSUANCE_IN_PROGRESS"  # the processor took the order
    MANUFACTURED = "MANUFACTURED"
    MANUFACTURING_FAILED = "MANUFACTURING_FAILED"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    RETURNED = "RETURNED"  # sent back undelivered


class CardProduct(CreatedAt, Base):
    __tablename__ = "card_products"

    id: Mapped[str] = mapped_column(
        PrefixedId("prd"), primary_key=True, default=lambda: new_id("prd")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    network: Mapped[str] = mapped_column(String(20))
    bin: Mapped[str] = mapped_column(String(8))
    pan_length: Mapped[int] = mapped_column(SmallInteger, server_default="16")
    form_factors: Mapped[list[str]] = mapped_column(ARRAY(String(10)))
    kind: Mapped[str] = mapped_column(String(10))
    currency: Mapped[str] = mapped_column(String(3))
    validity_months: Mapped[int] = mapped_column(SmallInteger, server_default="36")
    kyc_required: Mapped[bool] = mapped_column(server_default="true")
    max_load: Mapped[int | None] = mapped_column(BigInteger)
    default_controls: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class PanDataKey(CreatedAt, Base):
    """A data key for PANs, stored wrapped (encrypted) by the master keyring."""

    __tablename__ = "pan_data_keys"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)


class Card(CreatedAt, Base):
    __tablename__ = "cards"
    __table_args__ = (
        # One current card per number: a same-number replacement or conversion marks the old
        # card `replaced_by`, which takes it out of this index.
        Index(
            "uq_cards_current_pan",
            "network",
            "pan_hash",
            unique=True,
            postgresql_where=text("replaced_by IS NULL"),
        ),
        # Every card that ever carried a number (replaced ones too): a new number's freshness
        # check, and the cards a compromised number locks (cards/lifecycle.carriers).
        Index("ix_cards_network_pan_hash", "network", "pan_hash"),
        Index("ix_cards_program_id_user_id", "program_id", "user_id"),
        Index("ix_cards_program_id_balance_id", "program_id", "balance_id"),
        Index("ix_cards_pan_key_version", "pan_key_version"),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("card"), primary_key=True, default=lambda: new_id("card")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    product_id: Mapped[str] = mapped_column(PrefixedId("prd"), ForeignKey("card_products.id"))
    balance_id: Mapped[str] = mapped_column(PrefixedId("bal"), ForeignKey("balances.id"))
    user_id: Mapped[str | None] = mapped_column(PrefixedId("usr"), ForeignKey("users.id"))
    corporation_id: Mapped[str | None] = mapped_column(
        PrefixedId("cor"), ForeignKey("corporations.id")
    )
    type: Mapped[str] = mapped_column(String(10))
    status: Mapped[CardStatus] = mapped_column(Status(CardStatus, 20))
    network: Mapped[str] = mapped_column(String(20))
    bin: Mapped[str] = mapped_column(String(8))
    last4: Mapped[str] = mapped_column(String(4))
    pan_length: Mapped[int] = mapped_column(SmallInteger)
    pan_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    pan_key_version: Mapped[int] = mapped_column(Integer)
    pan_hash: Mapped[bytes] = mapped_column(LargeBinary)
    expiry_month: Mapped[int] = mapped_column(SmallInteger)
    expiry_year: Mapped[int] = mapped_column(SmallInteger)
    # Which CVK pair derives this card's CVV2; a CVV reset moves to the next one.
    cvv_key_index: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    embossing_name: Mapped[str | None] = mapped_column(String(26))
    # Physical cards: the production and delivery journey, and where the card goes.
    fulfillment_status: Mapped[FulfillmentStatus | None] = mapped_column(
        Status(FulfillmentStatus, 30)
    )
    delivery_address: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    carrier: Mapped[str | None] = mapped_column(String(50))
    tracking_number: Mapped[str | None] = mapped_column(String(100))
    pin_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The card id the PIN hash is bound to: the card's own, or the first card of a replacement
    # chain, so a replacement keeps the cardholder's PIN.
    pin_scope: Mapped[str | None] = mapped_column(String(40))
    pin_failures: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    gift_recipient_name: Mapped[str | None] = mapped_column(String(100))
    gift_message: Mapped[str | None] = mapped_column(String(500))
    holder_checks: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    holder_checks_window_start: Mapped[datetime | None]
    activated_at: Mapped[datetime | None]
    # Lifecycle (cards/lifecycle.py): where to return after an unfreeze or unlock, and why locked.
    previous_status: Mapped[CardStatus | None] = mapped_column(Status(CardStatus, 20))
    lock_reason: Mapped[int | None] = mapped_column(SmallInteger)
    # Spend controls (cards/controls.py); starts as the product's defaults.
    controls: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    three_ds: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    replaced_by: Mapped[str | None] = mapped_column(PrefixedId("card"))
    replacement_for: Mapped[str | None] = mapped_column(PrefixedId("card"))


class CardSpend(Base):
    """Spend so far per card and channel (or ALL), one row holding every counting period: the
    current day's, week's, month's and year's (each with the moment it began) and the card's
    lifetime. The authorization engine adds to it (`card_spend_add`: a transaction whose period
    began at another moment than the row's starts that period afresh), `evaluate()` reads it
    (`card_spent`: a period counts only while the row's start is the one asked for). One row per
    channel rather than one per period: an approval updates two or three rows, not ten or more,
    and the table does not grow by a row per card, channel and day."""

    __tablename__ = "card_spend"

    card_id: Mapped[str] = mapped_column(
        PrefixedId("card"), ForeignKey("cards.id"), primary_key=True
    )
    channel: Mapped[str] = mapped_column(String(12), primary_key=True)
    day_start: Mapped[datetime | None]
    day_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    day_count: Mapped[int] = mapped_column(Integer, server_default="0")
    week_start: Mapped[datetime | None]
    week_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    week_count: Mapped[int] = mapped_column(Integer, server_default="0")
    month_start: Mapped[datetime | None]
    month_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    month_count: Mapped[int] = mapped_column(Integer, server_default="0")
    year_start: Mapped[datetime | None]
    year_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    year_count: Mapped[int] = mapped_column(Integer, server_default="0")
    lifetime_amount: Mapped[int] = mapped_column(BigInteger, server_default="0")
    lifetime_count: Mapped[int] = mapped_column(Integer, server_default="0")


class CardReport(CreatedAt, Base):
    __tablename__ = "card_reports"
    __table_args__ = (
        # One open report per card: two requests racing to report one card cannot both open one.
        Index(
            "uq_card_reports_one_open",
            "card_id",
            unique=True,
            postgresql_where=text("status = 'OPEN'"),
        ),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("rpt"), primary_key=True, default=lambda: new_id("rpt")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    card_id: Mapped[str] = mapped_column(PrefixedId("card"), ForeignKey("cards.id"), index=True)
    reason: Mapped[str] = mapped_column(String(20))
    status: Mapped[ReportStatus] = mapped_column(Status(ReportStatus, 20), server_default="OPEN")
    reported_by: Mapped[str] = mapped_column(String(20))
    prior_status: Mapped[CardStatus] = mapped_column(Status(CardStatus, 20))
    prior_lock_reason: Mapped[int | None] = mapped_column(SmallInteger)
    replacement_card_id: Mapped[str | None] = mapped_column(PrefixedId("card"))
    decline_reason: Mapped[str | None] = mapped_column(String(500))
    # The later report that took this one's place (status SUPERSEDED).
    superseded_by: Mapped[str | None] = mapped_column(PrefixedId("rpt"))
    resolved_at: Mapped[datetime | None]


class CompromisedPan(CreatedAt, Base):
    """A card number reported lost, stolen or used in fraud, kept for good: no card carrying it
    may ever be able to authorize again (cards/lifecycle.py enforces it). Keyed like the cards'
    own uniqueness, by network and the PAN's keyed hash, so the number itself is not stored."""

    __tablename__ = "compromised_pans"

    network: Mapped[str] = mapped_column(String(20), primary_key=True)
    pan_hash: Mapped[bytes] = mapped_column(LargeBinary, primary_key=True)
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    # The card reported (or locked as lost or stolen), and why, the first time.
    card_id: Mapped[str] = mapped_column(PrefixedId("card"), ForeignKey("cards.id"))
    reason: Mapped[str] = mapped_column(String(20))


class PhysicalRequest(CreatedAt, Base):
    """A cardholder's virtual card, to be made physical with the same number."""

    __tablename__ = "physical_requests"

    id: Mapped[str] = mapped_column(
        PrefixedId("phr"), primary_key=True, default=lambda: new_id("phr")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    card_id: Mapped[str] = mapped_column(PrefixedId("card"), ForeignKey("cards.id"))
    status: Mapped[RequestStatus] = mapped_column(
        Status(RequestStatus, 20), server_default="PENDING"
    )
    delivery_address: Mapped[dict[str, Any]] = mapped_column(JSONB)
    embossing_name: Mapped[str] = mapped_column(String(26))
    physical_card_id: Mapped[str | None] = mapped_column(PrefixedId("card"))
    reject_reason: Mapped[str | None] = mapped_column(String(500))
    resolved_at: Mapped[datetime | None]


class CardRequest(CreatedAt, Base):
    """An asynchronous issuance: the worker turns it into a card, or records why it could not."""

    __tablename__ = "card_requests"

    id: Mapped[str] = mapped_column(
        PrefixedId("req"), primary_key=True, default=lambda: new_id("req")
    )
    program_id: Mapped[str] = mapped_column(PrefixedId("prg"), ForeignKey("programs.id"))
    status: Mapped[RequestStatus] = mapped_column(
        Status(RequestStatus, 20), server_default="PENDING"
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    card_id: Mapped[str | None] = mapped_column(PrefixedId("card"), ForeignKey("cards.id"))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(500))
    completed_at: Mapped[datetime | None]


class ZonePinKey(CreatedAt, Base):
    """A zone PIN key (ZPK) the program shares with its card processor, under which the network
    sends PIN blocks (cards/zone_pin_keys.py). Stored only wrapped by the master keyring; shown
    only by its key check value. One current key per program; a replaced key may keep verifying
    until `usable_until` (a grace period for messages already under way)."""

    __tablename__ = "zone_pin_keys"
    __table_args__ = (
        Index(
            "uq_zone_pin_keys_current",
            "program_id",
            unique=True,
            postgresql_where=text("replaced_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(
        PrefixedId("zpk"), primary_key=True, default=lambda: new_id("zpk")
    )
    program_id: Mapped[str] = mapped_column(
        PrefixedId("prg"), ForeignKey("programs.id"), index=True
    )
    algorithm: Mapped[str] = mapped_column(String(10))
    key_bits: Mapped[int] = mapped_column(SmallInteger)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    kcv: Mapped[str] = mapped_column(String(6))
    installed_by: Mapped[str | None] = mapped_column(String(64))
    replaced_at: Mapped[datetime | None]
    usable_until: Mapped[datetime | None]
