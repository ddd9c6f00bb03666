"""Cardholders, KYC, corporations and KYB, reference data, and the ops review queues."""

from typing import Annotated

from fastapi import Body, File, Form, Path, Query, Security, UploadFile, status
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.customers import reference, service
from cardcore.customers.embossing import embossing_names
from cardcore.customers.repository import (
    AddressRepository,
    CorporationRepository,
    UserRepository,
    verification_history,
)
from cardcore.customers.schemas import (
    AddressIn,
    AddressOut,
    AddressUpdate,
    CorporationCreate,
    CorporationOut,
    Country,
    Decision,
    DocumentOut,
    EmbossingNames,
    EmployeeIn,
    EmployeeOut,
    HistoryOut,
    KybOut,
    KycOut,
    PersonalInfoIn,
    PersonalInfoOut,
    ReviewDecision,
    Subdivision,
    UserCreate,
    UserOut,
    UserUpdate,
    masked,
)
from cardcore.customers.verification import Action
from cardcore.kit.access import Partner, partner_or_admin, require_admin
from cardcore.kit.app_state import DocumentStorageDep, KeyringDep
from cardcore.kit.envelope import ListMeta, Many, One
from cardcore.kit.errors import CardcoreError, FieldError, NotFound, error_responses
from cardcore.kit.pagination import Pagination
from cardcore.kit.principals import Principal
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.kit.storage import DocumentStorage
from cardcore.models import Corporation, CustomerStatus, User, VerificationStatus

# The partner, or ops staff whose role the matrix allows ("customers.read").
CustomerReader = Annotated[Principal, Security(partner_or_admin("customers.read"))]

routes = router(
    tags=["customers"],
    encryption="optional",
)
admin_routes = router(
    tags=["admin"],
    encryption="optional",
)
reference_routes = router(tags=["reference"])

UserId = Annotated[str, Path(description="A user id (`usr_…`).")]
CorporationId = Annotated[str, Path(description="A corporation id (`cor_…`).")]
Reviewer = Annotated[Principal, Security(require_admin("kyc.review"))]
KYC_ERRORS = error_responses("NOT_FOUND", "KYC_LOCKED", "USER_CLOSED")

# Nothing to send is a valid request: the body is optional and defaults to empty.
Review = Annotated[ReviewDecision, Body(default_factory=ReviewDecision)]
NewUser = Annotated[UserCreate, Body(default_factory=UserCreate)]


async def _history(session: AsyncSession, subject_id: str) -> list[HistoryOut]:
    rows = await verification_history(session, subject_id)
    return [HistoryOut.model_validate(row) for row in rows]


async def kyc_view(session: AsyncSession, user: User) -> KycOut:
    return KycOut(
        status=user.kyc_status,
        reason=user.kyc_reason,
        personal=PersonalInfoOut(
            first_name=user.first_name,
            middle_name=user.middle_name,
            last_name=user.last_name,
            date_of_birth=user.date_of_birth,
            nationality=user.nationality,
            national_id_type=user.national_id_type,
            national_id_masked=masked(user.national_id_last4),
        ),
        addresses=[AddressOut.model_validate(a) for a in await service.addresses_of(session, user)],
        documents=[
            DocumentOut.model_validate(d) for d in await service.documents_of(session, user)
        ],
        history=await _history(session, user.id),
    )


async def kyb_view(session: AsyncSession, corporation: Corporation) -> KybOut:
    documents = await service.documents_of(session, corporation)
    return KybOut(
        status=corporation.kyb_status,
        reason=corporation.kyb_reason,
        documents=[DocumentOut.model_validate(d) for d in documents],
        history=await _history(session, corporation.id),
    )


async def _store_upload(
    session: AsyncSession,
    storage: DocumentStorage,
    subject: User | Corporation,
    file: UploadFile,
    type: str,
    side: str | None,
    principal: Principal,
) -> One[DocumentOut]:
    document = await service.add_document(
        session,
        storage,
        subject,
        type=type,
        side=side,
        content_type=(file.content_type or "").split(";")[0].strip().lower(),
        data=await _read_upload(file),
        principal=principal,
    )
    await session.refresh(document)
    return One(data=DocumentOut.model_validate(document))


async def _read_upload(file: UploadFile) -> bytes:
    """Read at most the limit (plus one byte, to know it was exceeded)."""
    data = await file.read(service.MAX_DOCUMENT_BYTES + 1)
    if len(data) > service.MAX_DOCUMENT_BYTES:
        raise CardcoreError("PAYLOAD_TOO_LARGE", "Documents may be at most 10 MiB.")
    return data


# -- users ---------------------------------------------------------------------------------------


@routes.post(
    "/v1/users",
    summary="Create a user (cardholder)",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("ALREADY_EXISTS"),
)
async def create_user(body: NewUser, principal: Partner, session: DbSession) -> One[UserOut]:
    user = await service.create_user(
        session,
        program_id=principal.tenant_id,
        external_reference=body.external_reference,
        email=body.email,
        phone=body.phone,
    )
    await session.refresh(user)
    return One(data=UserOut.of(user))


@routes.get("/v1/users", summary="List or look up users")
async def list_users(
    principal: CustomerReader,
    session: DbSession,
    keyring: KeyringDep,
    page: Pagination,
    user_status: Annotated[CustomerStatus | None, Query(alias="status")] = None,
    kyc_status: Annotated[VerificationStatus | None, Query()] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    phone: Annotated[str | None, Query(max_length=30)] = None,
    external_reference: Annotated[str | None, Query(max_length=100)] = None,
    national_id: Annotated[
        str | None, Query(max_length=50, description="Exact national id number (a CNIC, say).")
    ] = None,
) -> Many[UserOut]:
    repository = UserRepository(session, principal.tenant_id)
    statement = repository.listed(
        status=user_status,
        kyc_status=kyc_status,
        email=None if email is None else reference.normalize_email(email),
        phone=None if phone is None else reference.normalize_phone(phone),
        external_reference=external_reference,
        national_id_hash=(
            None if national_id is None else service.national_id_hash(keyring, national_id)
        ),
    )
    users, meta = await repository.page(statement, page)
    return Many(data=[UserOut.of(u) for u in users], meta=meta)


@routes.get("/v1/users/{user_id}", summary="Get a user", responses=error_responses("NOT_FOUND"))
async def get_user(user_id: UserId, principal: CustomerReader, session: DbSession) -> One[UserOut]:
    return One(
        data=UserOut.of(await UserRepository(session, principal.tenant_id).get_or_404(user_id))
    )


@routes.patch(
    "/v1/users/{user_id}",
    summary="Change a user's contact details or reference",
    responses=error_responses("NOT_FOUND", "ALREADY_EXISTS", "USER_CLOSED"),
)
async def update_user(
    user_id: UserId, body: UserUpdate, principal: Partner, session: DbSession
) -> One[UserOut]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(user_id, for_update=True)
    await service.update_user(session, user, body.model_dump(exclude_unset=True))
    await session.refresh(user)
    return One(data=UserOut.of(user))


@routes.post(
    "/v1/users/{user_id}/close",
    summary="Close a user for good",
    responses=error_responses("NOT_FOUND"),
)
async def close_user(user_id: UserId, principal: Partner, session: DbSession) -> One[UserOut]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(user_id, for_update=True)
    await service.close_user(session, user)
    await session.refresh(user)
    return One(data=UserOut.of(user))


@routes.get(
    "/v1/users/{user_id}/embossing-names",
    summary="Names that can be embossed on this user's card",
    responses=error_responses("NOT_FOUND", "KYC_INCOMPLETE"),
)
async def get_embossing_names(
    user_id: UserId, principal: Partner, session: DbSession
) -> One[EmbossingNames]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(user_id)
    if not user.first_name or not user.last_name:
        raise CardcoreError(
            "KYC_INCOMPLETE",
            errors=[
                FieldError(field="personal", code="MISSING", message="Set the KYC name first.")
            ],
        )
    names = embossing_names(user.first_name, user.middle_name, user.last_name)
    return One(data=EmbossingNames(names=names))


# -- KYC -----------------------------------------------------------------------------------------


async def _user_for_update(session: AsyncSession, principal: Principal, user_id: str) -> User:
    return await UserRepository(session, principal.tenant_id).get_or_404(user_id, for_update=True)


@routes.get("/v1/users/{user_id}/kyc", summary="KYC status, data, documents and history")
async def get_kyc(user_id: UserId, principal: CustomerReader, session: DbSession) -> One[KycOut]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(user_id)
    return One(data=await kyc_view(session, user))


@routes.put(
    "/v1/users/{user_id}/kyc/personal", summary="Set KYC personal information", responses=KYC_ERRORS
)
async def put_personal(
    user_id: UserId,
    body: PersonalInfoIn,
    principal: Partner,
    session: DbSession,
    keyring: KeyringDep,
) -> One[KycOut]:
    user = await _user_for_update(session, principal, user_id)
    await service.set_personal_info(
        session,
        keyring,
        user,
        service.PersonalInfo(**body.model_dump()),
        principal,
    )
    return One(data=await kyc_view(session, user))


@routes.post(
    "/v1/users/{user_id}/kyc/addresses",
    summary="Add an address",
    status_code=status.HTTP_201_CREATED,
    responses=KYC_ERRORS,
)
async def add_address(
    user_id: UserId, body: AddressIn, principal: Partner, session: DbSession
) -> One[AddressOut]:
    user = await _user_for_update(session, principal, user_id)
    address = await service.add_address(session, user, body.model_dump(), principal)
    await session.refresh(address)
    return One(data=AddressOut.model_validate(address))


@routes.patch(
    "/v1/users/{user_id}/kyc/addresses/{address_id}",
    summary="Change an address",
    responses=KYC_ERRORS,
)
async def update_address(
    user_id: UserId,
    address_id: Annotated[str, Path(description="An address id (`adr_…`).")],
    body: AddressUpdate,
    principal: Partner,
    session: DbSession,
) -> One[AddressOut]:
    user = await _user_for_update(session, principal, user_id)
    address = await AddressRepository(session, principal.tenant_id).get_or_404(address_id)
    if address.user_id != user.id:
        raise NotFound("address")
    await service.update_address(
        session, user, address, body.model_dump(exclude_unset=True), principal
    )
    await session.refresh(address)
    return One(data=AddressOut.model_validate(address))


@routes.post(
    "/v1/users/{user_id}/kyc/documents",
    summary="Upload an identity document (multipart)",
    description="JPEG, PNG or PDF, at most 10 MiB. Types: passport, national_id, "
    "driving_licence, proof_of_address, selfie; side front or back.",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        "NOT_FOUND", "KYC_LOCKED", "USER_CLOSED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"
    ),
)
async def upload_user_document(
    user_id: UserId,
    principal: Partner,
    session: DbSession,
    storage: DocumentStorageDep,
    file: Annotated[UploadFile, File()],
    type: Annotated[str, Form(max_length=40)],
    side: Annotated[str | None, Form(max_length=10)] = None,
) -> One[DocumentOut]:
    user = await _user_for_update(session, principal, user_id)
    return await _store_upload(session, storage, user, file, type, side, principal)


@routes.post(
    "/v1/users/{user_id}/kyc/submit",
    summary="Send KYC for review",
    responses=error_responses("NOT_FOUND", "KYC_INCOMPLETE", "INVALID_KYC_TRANSITION"),
)
async def submit_kyc(user_id: UserId, principal: Partner, session: DbSession) -> One[KycOut]:
    user = await _user_for_update(session, principal, user_id)
    await service.submit(session, user, principal)
    return One(data=await kyc_view(session, user))


@routes.post(
    "/v1/users/{user_id}/kyc/decision",
    summary="Record your own KYC decision",
    description="For partners who verify identity themselves (they take on KYC): APPROVED "
    "or REJECTED, from NOT_STARTED, PENDING or IN_REVIEW.",
    responses=error_responses("NOT_FOUND", "INVALID_KYC_TRANSITION"),
)
async def decide_kyc(
    user_id: UserId, body: Decision, principal: Partner, session: DbSession
) -> One[KycOut]:
    user = await _user_for_update(session, principal, user_id)
    await service.decide(
        session,
        user,
        approved=body.decision == "APPROVED",
        reason=body.reason,
        principal=principal,
        action=Action.PARTNER_DECISION,
    )
    return One(data=await kyc_view(session, user))


# -- corporations --------------------------------------------------------------------------------


@routes.post(
    "/v1/corporations",
    summary="Create a corporation",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("ALREADY_EXISTS"),
)
async def create_corporation(
    body: CorporationCreate, principal: Partner, session: DbSession
) -> One[CorporationOut]:
    corporation = await service.create_corporation(
        session, program_id=principal.tenant_id, values=body.model_dump()
    )
    await session.refresh(corporation)
    return One(data=CorporationOut.model_validate(corporation))


@routes.get(
    "/v1/corporations/{corporation_id}",
    summary="Get a corporation",
    responses=error_responses("NOT_FOUND"),
)
async def get_corporation(
    corporation_id: CorporationId, principal: CustomerReader, session: DbSession
) -> One[CorporationOut]:
    corporation = await CorporationRepository(session, principal.tenant_id).get_or_404(
        corporation_id
    )
    return One(data=CorporationOut.model_validate(corporation))


@routes.get("/v1/corporations/{corporation_id}/kyb", summary="KYB status, documents, history")
async def get_kyb(
    corporation_id: CorporationId, principal: CustomerReader, session: DbSession
) -> One[KybOut]:
    corporation = await CorporationRepository(session, principal.tenant_id).get_or_404(
        corporation_id
    )
    return One(data=await kyb_view(session, corporation))


@routes.post(
    "/v1/corporations/{corporation_id}/kyb/documents",
    summary="Upload a KYB document (multipart)",
    description="JPEG, PNG or PDF, at most 10 MiB. Types: certificate_of_incorporation, "
    "articles_of_association, proof_of_address, shareholder_register, other.",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(
        "NOT_FOUND", "KYC_LOCKED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE"
    ),
)
async def upload_corporation_document(
    corporation_id: CorporationId,
    principal: Partner,
    session: DbSession,
    storage: DocumentStorageDep,
    file: Annotated[UploadFile, File()],
    type: Annotated[str, Form(max_length=40)],
) -> One[DocumentOut]:
    corporation = await CorporationRepository(session, principal.tenant_id).get_or_404(
        corporation_id, for_update=True
    )
    return await _store_upload(session, storage, corporation, file, type, None, principal)


@routes.post(
    "/v1/corporations/{corporation_id}/kyb/submit",
    summary="Send KYB for ops review",
    responses=error_responses("NOT_FOUND", "KYC_INCOMPLETE", "INVALID_KYC_TRANSITION"),
)
async def submit_kyb(
    corporation_id: CorporationId, principal: Partner, session: DbSession
) -> One[KybOut]:
    corporation = await CorporationRepository(session, principal.tenant_id).get_or_404(
        corporation_id, for_update=True
    )
    await service.submit(session, corporation, principal)
    return One(data=await kyb_view(session, corporation))


@routes.post(
    "/v1/corporations/{corporation_id}/employees",
    summary="Link a user to the corporation as an employee",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("NOT_FOUND", "ALREADY_EXISTS", "USER_CLOSED"),
)
async def add_employee(
    corporation_id: CorporationId, body: EmployeeIn, principal: Partner, session: DbSession
) -> One[EmployeeOut]:
    corporation = await CorporationRepository(session, principal.tenant_id).get_or_404(
        corporation_id
    )
    user = await UserRepository(session, principal.tenant_id).get_or_404(body.user_id)
    employee = await service.add_employee(session, corporation, user, body.title)
    await session.refresh(employee)
    return One(data=EmployeeOut.model_validate(employee))


# -- ops review ----------------------------------------------------------------------------------


@admin_routes.get("/v1/admin/kyc-reviews", summary="Users waiting for KYC review (admin, manager)")
async def kyc_queue(principal: Reviewer, session: DbSession, page: Pagination) -> Many[UserOut]:
    repository = UserRepository(session, principal.tenant_id)
    users, meta = await repository.page(
        repository.listed(kyc_status=VerificationStatus.IN_REVIEW), page
    )
    return Many(data=[UserOut.of(u) for u in users], meta=meta)


@admin_routes.get("/v1/admin/kyc-reviews/{user_id}", summary="One user's KYC file, for review")
async def kyc_file(user_id: UserId, principal: Reviewer, session: DbSession) -> One[KycOut]:
    user = await UserRepository(session, principal.tenant_id).get_or_404(user_id)
    return One(data=await kyc_view(session, user))


async def _review_user(
    session: AsyncSession, principal: Principal, user_id: str, approved: bool, reason: str | None
) -> KycOut:
    user = await UserRepository(session, principal.tenant_id).get_or_404(user_id, for_update=True)
    await service.decide(
        session, user, approved=approved, reason=reason, principal=principal, action=Action.REVIEW
    )
    return await kyc_view(session, user)


@admin_routes.post(
    "/v1/admin/kyc-reviews/{user_id}/approve",
    summary="Approve a user's KYC (admin, manager)",
    responses=error_responses("NOT_FOUND", "INVALID_KYC_TRANSITION"),
)
async def approve_kyc(
    user_id: UserId, body: Review, principal: Reviewer, session: DbSession
) -> One[KycOut]:
    return One(data=await _review_user(session, principal, user_id, True, body.reason))


@admin_routes.post(
    "/v1/admin/kyc-reviews/{user_id}/reject",
    summary="Reject a user's KYC (admin, manager)",
    responses=error_responses("NOT_FOUND", "INVALID_KYC_TRANSITION"),
)
async def reject_kyc(
    user_id: UserId, body: Review, principal: Reviewer, session: DbSession
) -> One[KycOut]:
    return One(data=await _review_user(session, principal, user_id, False, body.reason))


@admin_routes.get(
    "/v1/admin/kyb-reviews", summary="Corporations waiting for KYB review (admin, manager)"
)
async def kyb_queue(
    principal: Reviewer, session: DbSession, page: Pagination
) -> Many[CorporationOut]:
    repository = CorporationRepository(session, principal.tenant_id)
    corporations, meta = await repository.page(
        repository.listed(kyb_status=VerificationStatus.IN_REVIEW), page
    )
    return Many(data=[CorporationOut.model_validate(c) for c in corporations], meta=meta)


async def _review_corporation(
    session: AsyncSession,
    principal: Principal,
    corporation_id: str,
    approved: bool,
    reason: str | None,
) -> KybOut:
    corporation = await CorporationRepository(session, principal.tenant_id).get_or_404(
        corporation_id, for_update=True
    )
    await service.decide(
        session,
        corporation,
        approved=approved,
        reason=reason,
        principal=principal,
        action=Action.REVIEW,
    )
    return await kyb_view(session, corporation)


@admin_routes.post(
    "/v1/admin/kyb-reviews/{corporation_id}/approve",
    summary="Approve a corporation's KYB (admin, manager)",
    responses=error_responses("NOT_FOUND", "INVALID_KYC_TRANSITION"),
)
async def approve_kyb(
    corporation_id: CorporationId, body: Review, principal: Reviewer, session: DbSession
) -> One[KybOut]:
    return One(
        data=await _review_corporation(session, principal, corporation_id, True, body.reason)
    )


@admin_routes.post(
    "/v1/admin/kyb-reviews/{corporation_id}/reject",
    summary="Reject a corporation's KYB (admin, manager)",
    responses=error_responses("NOT_FOUND", "INVALID_KYC_TRANSITION"),
)
async def reject_kyb(
    corporation_id: CorporationId, body: Review, principal: Reviewer, session: DbSession
) -> One[KybOut]:
    return One(
        data=await _review_corporation(session, principal, corporation_id, False, body.reason)
    )


# -- reference data ------------------------------------------------------------------------------


@reference_routes.get("/v1/countries", summary="Countries (ISO 3166-1)")
async def list_countries() -> Many[Country]:
    countries = [Country(**c) for c in reference.countries()]
    return Many(data=countries, meta=ListMeta(next_cursor=None, has_more=False))


@reference_routes.get(
    "/v1/countries/{code}/states",
    summary="A country's subdivisions (ISO 3166-2)",
    responses=error_responses("NOT_FOUND"),
)
async def list_states(code: Annotated[str, Path(min_length=2, max_length=2)]) -> Many[Subdivision]:
    try:
        country = reference.country_code(code)
    except CardcoreError as exc:
        raise NotFound("country") from exc
    states = [Subdivision(**s) for s in reference.subdivisions(country)]
    return Many(data=states, meta=ListMeta(next_cursor=None, has_more=False))
