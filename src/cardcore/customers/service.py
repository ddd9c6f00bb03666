"""Users, KYC data, documents and corporations: the rules, with no HTTP."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.customers import reference
from cardcore.customers.events import (
    CorporationCreated,
    EmployeeAdded,
    UserClosed,
    UserCreated,
    UserUpdated,
)
from cardcore.customers.verification import Action, check, transition
from cardcore.kit.crypto import Keyring
from cardcore.kit.database_errors import flush_unique
from cardcore.kit.errors import CardcoreError, FieldError
from cardcore.kit.outbox import record_event
from cardcore.kit.principals import Principal
from cardcore.kit.storage import DocumentStorage
from cardcore.models import (
    Address,
    Corporation,
    CorporationEmployee,
    CustomerStatus,
    KycDocument,
    User,
    VerificationStatus,
)

NATIONAL_ID_PURPOSE = "national_id"
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024
# What each accepted file type starts with: the declared content type must match the bytes.
MAGIC = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF-",),
}
USER_DOCUMENT_TYPES = ("passport", "national_id", "driving_licence", "proof_of_address", "selfie")
CORPORATION_DOCUMENT_TYPES = (
    "certificate_of_incorporation",
    "articles_of_association",
    "proof_of_address",
    "shareholder_register",
    "other",
)
TWO_SIDED = ("national_id", "driving_licence")


async def _flush_unique(session: AsyncSession, what: str) -> None:
    await flush_unique(session, f"A {what} with this reference already exists.")


# -- users ---------------------------------------------------------------------------------------


async def create_user(
    session: AsyncSession,
    *,
    program_id: str,
    external_reference: str | None,
    email: str | None,
    phone: str | None,
) -> User:
    user = User(
        program_id=program_id,
        external_reference=external_reference,
        email=reference.normalize_email(email) if email else None,
        phone=reference.normalize_phone(phone) if phone else None,
    )
    session.add(user)
    await _flush_unique(session, "user")
    record_event(
        session,
        program_id=program_id,
        object_id=user.id,
        data=UserCreated(id=user.id, external_reference=external_reference),
    )
    return user


def require_open(user: User) -> None:
    if user.status == CustomerStatus.CLOSED:
        raise CardcoreError("USER_CLOSED")


async def update_user(session: AsyncSession, user: User, changes: dict[str, Any]) -> User:
    require_open(user)
    if changes.get("email"):
        changes["email"] = reference.normalize_email(changes["email"])
    if changes.get("phone"):
        changes["phone"] = reference.normalize_phone(changes["phone"])
    for name, value in changes.items():
        setattr(user, name, value)
    await _flush_unique(session, "user")
    if changes:
        record_event(
            session,
            program_id=user.program_id,
            object_id=user.id,
            data=UserUpdated(id=user.id, fields=sorted(changes)),
        )
    return user


async def close_user(session: AsyncSession, user: User) -> User:
    if user.status != CustomerStatus.CLOSED:
        user.status = CustomerStatus.CLOSED
        user.closed_at = datetime.now(UTC)
        await session.flush()
        record_event(
            session, program_id=user.program_id, object_id=user.id, data=UserClosed(id=user.id)
        )
    return user


def national_id_hash(keyring: Keyring, number: str) -> bytes:
    return keyring.lookup_hash(_normalize_national_id(number), NATIONAL_ID_PURPOSE)


def _normalize_national_id(number: str) -> str:
    return "".join(ch for ch in number.upper() if ch.isalnum())


# -- KYC -----------------------------------------------------------------------------------------


async def _edit(session: AsyncSession, subject: User | Corporation, principal: Principal) -> None:
    """Data is about to change: allowed only while editable, and it (re)opens verification."""
    if isinstance(subject, User):
        require_open(subject)
    await transition(session, subject, Action.EDIT, VerificationStatus.PENDING, principal=principal)


@dataclass(frozen=True)
class PersonalInfo:
    first_name: str
    middle_name: str | None
    last_name: str
    date_of_birth: date
    nationality: str
    national_id_type: str
    national_id_number: str


async def set_personal_info(
    session: AsyncSession, keyring: Keyring, user: User, info: PersonalInfo, principal: Principal
) -> User:
    await _edit(session, user, principal)
    if info.date_of_birth >= date.today() or info.date_of_birth.year < 1900:
        raise CardcoreError(
            "VALIDATION_ERROR",
            errors=[
                FieldError(
                    field="date_of_birth",
                    code="OUT_OF_RANGE",
                    message="Not a plausible birth date.",
                )
            ],
        )
    number = _normalize_national_id(info.national_id_number)
    if not number:
        raise CardcoreError(
            "VALIDATION_ERROR",
            errors=[
                FieldError(
                    field="national_id_number", code="EMPTY", message="No letters or digits."
                )
            ],
        )
    user.first_name = info.first_name.strip()
    user.middle_name = (info.middle_name or "").strip() or None
    user.last_name = info.last_name.strip()
    user.date_of_birth = info.date_of_birth
    user.nationality = reference.country_code(info.nationality, "nationality")
    user.national_id_type = info.national_id_type
    user.national_id_ciphertext = keyring.encrypt(number.encode(), f"national_id:{user.id}")
    user.national_id_hash = national_id_hash(keyring, number)
    user.national_id_last4 = number[-4:]
    await session.flush()
    return user


def _address_fields(values: dict[str, Any]) -> dict[str, Any]:
    fields = dict(values)
    if "country" in fields:
        fields["country"] = reference.country_code(fields["country"])
    return fields


def _check_state(address: Address) -> None:
    if address.state:
        address.state = reference.subdivision_code(address.country, address.state)


async def add_address(
    session: AsyncSession, user: User, values: dict[str, Any], principal: Principal
) -> Address:
    await _edit(session, user, principal)
    address = Address(program_id=user.program_id, user_id=user.id, **_address_fields(values))
    _check_state(address)
    session.add(address)
    await session.flush()
    return address


async def update_address(
    session: AsyncSession,
    user: User,
    address: Address,
    values: dict[str, Any],
    principal: Principal,
) -> Address:
    await _edit(session, user, principal)
    for name, value in _address_fields(values).items():
        setattr(address, name, value)
    _check_state(address)
    await session.flush()
    return address


def sniff(content_type: str, data: bytes) -> None:
    if content_type not in MAGIC:
        raise CardcoreError("UNSUPPORTED_MEDIA_TYPE")
    if not data.startswith(MAGIC[content_type]):
        raise CardcoreError(
            "UNSUPPORTED_MEDIA_TYPE", f"The file's bytes are not a {content_type} file."
        )


async def add_document(
    session: AsyncSession,
    storage: DocumentStorage,
    subject: User | Corporation,
    *,
    type: str,
    side: str | None,
    content_type: str,
    data: bytes,
    principal: Principal,
) -> KycDocument:
    allowed = USER_DOCUMENT_TYPES if isinstance(subject, User) else CORPORATION_DOCUMENT_TYPES
    if type not in allowed:
        raise CardcoreError(
            "VALIDATION_ERROR",
            errors=[
                FieldError(
                    field="type", code="INVALID_TYPE", message=f"One of: {', '.join(allowed)}."
                )
            ],
        )
    if side is not None and side not in ("front", "back"):
        raise CardcoreError(
            "VALIDATION_ERROR",
            errors=[FieldError(field="side", code="INVALID_SIDE", message="front or back.")],
        )
    if len(data) > MAX_DOCUMENT_BYTES:
        raise CardcoreError("PAYLOAD_TOO_LARGE", "Documents may be at most 10 MiB.")
    if not data:
        raise CardcoreError(
            "VALIDATION_ERROR",
            errors=[FieldError(field="file", code="EMPTY", message="The file is empty.")],
        )
    sniff(content_type, data)
    await _edit(session, subject, principal)
    document = KycDocument(
        program_id=subject.program_id,
        subject_type="user" if isinstance(subject, User) else "corporation",
        subject_id=subject.id,
        type=type,
        side=side,
        content_type=content_type,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key="",
    )
    session.add(document)
    await session.flush()
    document.storage_key = f"{subject.program_id}/{document.id}"
    # Written before the row commits: a crash in between leaves an orphan file, never a row
    # pointing at nothing.
    await storage.put(document.storage_key, data)
    await session.flush()
    return document


async def documents_of(session: AsyncSession, subject: User | Corporation) -> list[KycDocument]:
    return list(
        (
            await session.scalars(
                select(KycDocument)
                .where(KycDocument.subject_id == subject.id)
                .order_by(KycDocument.id)
            )
        ).all()
    )


async def addresses_of(session: AsyncSession, user: User) -> list[Address]:
    return list(
        (
            await session.scalars(
                select(Address).where(Address.user_id == user.id).order_by(Address.id)
            )
        ).all()
    )


def _missing(field: str, message: str) -> FieldError:
    return FieldError(field=field, code="MISSING", message=message)


async def missing_for_review(
    session: AsyncSession, subject: User | Corporation
) -> list[FieldError]:
    documents = {(d.type, d.side) for d in await documents_of(session, subject)}
    types = {kind for kind, _ in documents}
    if isinstance(subject, Corporation):
        return [
            _missing(f"documents.{kind}", f"A {kind.replace('_', ' ')} is required.")
            for kind in ("certificate_of_incorporation", "proof_of_address")
            if kind not in types
        ]
    missing = [
        _missing(f"personal.{name}", f"{name.replace('_', ' ')} is required.")
        for name in ("first_name", "last_name", "date_of_birth", "nationality", "national_id_last4")
        if getattr(subject, name) is None
    ]
    if not any(a.type == "RESIDENTIAL" for a in await addresses_of(session, subject)):
        missing.append(_missing("addresses", "A RESIDENTIAL address is required."))
    identity = ("passport" in types) or any(
        (kind, "front") in documents and (kind, "back") in documents for kind in TWO_SIDED
    )
    if not identity:
        missing.append(
            _missing(
                "documents.identity",
                "A passport, or both sides of a national id or driving licence, is required.",
            )
        )
    if "selfie" not in types:
        missing.append(_missing("documents.selfie", "A selfie is required."))
    return missing


async def submit(session: AsyncSession, subject: User | Corporation, principal: Principal) -> None:
    if isinstance(subject, User):
        require_open(subject)
    check(subject, Action.SUBMIT, VerificationStatus.IN_REVIEW)
    missing = await missing_for_review(session, subject)
    if missing:
        raise CardcoreError("KYC_INCOMPLETE", errors=missing)
    await transition(
        session, subject, Action.SUBMIT, VerificationStatus.IN_REVIEW, principal=principal
    )


async def decide(
    session: AsyncSession,
    subject: User | Corporation,
    *,
    approved: bool,
    reason: str | None,
    principal: Principal,
    action: Action,
) -> None:
    if isinstance(subject, User):
        require_open(subject)
    to = VerificationStatus.APPROVED if approved else VerificationStatus.REJECTED
    await transition(session, subject, action, to, principal=principal, reason=reason)


# -- corporations --------------------------------------------------------------------------------


async def create_corporation(
    session: AsyncSession, *, program_id: str, values: dict[str, Any]
) -> Corporation:
    fields = dict(values)
    fields["country"] = reference.country_code(fields["country"])
    if fields.get("state"):
        fields["state"] = reference.subdivision_code(fields["country"], fields["state"])
    corporation = Corporation(program_id=program_id, **fields)
    session.add(corporation)
    await _flush_unique(session, "corporation")
    record_event(
        session,
        program_id=program_id,
        object_id=corporation.id,
        data=CorporationCreated(
            id=corporation.id, legal_name=corporation.legal_name, country=corporation.country
        ),
    )
    return corporation


async def add_employee(
    session: AsyncSession, corporation: Corporation, user: User, title: str | None
) -> CorporationEmployee:
    require_open(user)
    employee = CorporationEmployee(
        corporation_id=corporation.id,
        user_id=user.id,
        program_id=corporation.program_id,
        title=title,
    )
    session.add(employee)
    await _flush_unique(session, "employee link")
    record_event(
        session,
        program_id=corporation.program_id,
        object_id=corporation.id,
        data=EmployeeAdded(corporation_id=corporation.id, user_id=user.id),
    )
    return employee
