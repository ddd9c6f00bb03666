"""The issuer's ops staff: login, their own profile, other admins, network keys, the audit log."""

from typing import Annotated

from fastapi import Path, Query, Request, Security, status

from cardcore.admin.repository import AuditLogRepository
from cardcore.admin.schemas import (
    AdminCreate,
    AdminLogin,
    AdminOut,
    AdminToken,
    AdminUpdate,
    AuditEntryOut,
    NetworkKeyCreate,
    ProgramSettings,
    ProgramSettingsUpdate,
)
from cardcore.auth import service as auth_service
from cardcore.kit.access import require_admin
from cardcore.kit.app_state import SettingsDep, TokenKeysDep
from cardcore.kit.crypto import password_hasher
from cardcore.kit.envelope import Many, One
from cardcore.kit.errors import CardcoreError, error_responses
from cardcore.kit.inputs import Timestamp
from cardcore.kit.pagination import Pagination
from cardcore.kit.principals import Principal, PrincipalKind
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.models import Program
from cardcore.programs import service as programs
from cardcore.programs.repository import AdminUserRepository
from cardcore.programs.schemas import ApiKeyCreated

routes = router(
    tags=["admin"],
    encryption="optional",
)

AnyAdmin = Annotated[Principal, Security(require_admin("admin.me"))]
UserManager = Annotated[Principal, Security(require_admin("admin_users.manage"))]
NetworkKeyCreator = Annotated[Principal, Security(require_admin("network_keys.create"))]
AuditReader = Annotated[Principal, Security(require_admin("audit_log.read"))]
ProgramReader = Annotated[Principal, Security(require_admin("program.read"))]
ProgramWriter = Annotated[Principal, Security(require_admin("program.write"))]
AdminId = Annotated[str, Path(description="An admin user id (`adm_…`).")]


@routes.post(
    "/v1/admin/auth/login",
    summary="Log in as ops staff",
    description="Returns an admin access token (30 minutes by default). Five wrong passwords in "
    "a row lock the account for 15 minutes.",
    responses=error_responses("ACCOUNT_LOCKED"),
)
async def login(
    body: AdminLogin,
    session: DbSession,
    request: Request,
    tokens: TokenKeysDep,
    settings: SettingsDep,
) -> One[AdminToken]:
    request.state.audit_object_id = body.email[:64]
    admin, token = await auth_service.admin_login(
        session,
        tokens,
        settings,
        program_id=body.program_id,
        email=body.email,
        password=body.password,
    )
    request.state.principal = Principal(
        PrincipalKind.ADMIN,
        program_id=admin.program_id,
        actor_id=admin.id,
        channel="admin",
        role=admin.role,
    )
    request.state.audit_object_id = admin.id
    return One(
        data=AdminToken(
            access_token=token,
            expires_in=settings.admin_token_ttl_seconds,
            admin=AdminOut.model_validate(admin),
        )
    )


@routes.get("/v1/admin/me", summary="The logged-in admin")
async def me(principal: AnyAdmin, session: DbSession) -> One[AdminOut]:
    repository = AdminUserRepository(session, principal.tenant_id)
    return One(data=AdminOut.model_validate(await repository.get_or_404(principal.actor_id or "")))


@routes.post(
    "/v1/admin/users",
    summary="Add an admin user (role admin)",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("ALREADY_EXISTS"),
)
async def create_admin(
    body: AdminCreate, principal: UserManager, session: DbSession
) -> One[AdminOut]:
    admin = await programs.create_admin_user(
        session,
        program_id=principal.tenant_id,
        email=body.email,
        password=body.password,
        role=body.role,
    )
    await session.refresh(admin)
    return One(data=AdminOut.model_validate(admin))


@routes.get("/v1/admin/users", summary="List admin users (role admin)")
async def list_admins(
    principal: UserManager, session: DbSession, page: Pagination
) -> Many[AdminOut]:
    repository = AdminUserRepository(session, principal.tenant_id)
    admins, meta = await repository.page(repository.readable(), page)
    return Many(data=[AdminOut.model_validate(a) for a in admins], meta=meta)


@routes.patch(
    "/v1/admin/users/{admin_id}",
    summary="Change an admin's role, status or password (role admin)",
    responses=error_responses("NOT_FOUND", "CANNOT_MODIFY_SELF"),
)
async def update_admin(
    admin_id: AdminId, body: AdminUpdate, principal: UserManager, session: DbSession
) -> One[AdminOut]:
    admin = await AdminUserRepository(session, principal.tenant_id).get_or_404(
        admin_id, for_update=True
    )
    if admin.id == principal.actor_id and (
        body.active is False or (body.role is not None and body.role != admin.role)
    ):
        raise CardcoreError("CANNOT_MODIFY_SELF")
    if body.role is not None:
        admin.role = body.role
    if body.active is not None:
        admin.active = body.active
    if body.password is not None:
        admin.password_hash = password_hasher.hash(body.password)
        admin.failed_logins = 0
        admin.locked_until = None
    await session.flush()
    return One(data=AdminOut.model_validate(admin))


@routes.post(
    "/v1/admin/network-keys",
    summary="Create a network API key for the card processor (role admin)",
    status_code=status.HTTP_201_CREATED,
)
async def create_network_key(
    body: NetworkKeyCreate, principal: NetworkKeyCreator, session: DbSession
) -> One[ApiKeyCreated]:
    key, secret = await programs.create_api_key(
        session, program_id=principal.tenant_id, name=body.name, kind="network"
    )
    await session.refresh(key)
    return One(data=ApiKeyCreated.of(key, secret=secret))


@routes.get("/v1/admin/audit-log", summary="The audit trail (roles admin, manager)")
async def audit_log(
    principal: AuditReader,
    session: DbSession,
    page: Pagination,
    actor_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    outcome: Annotated[str | None, Query(max_length=20)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    request_id: Annotated[str | None, Query(max_length=128)] = None,
    channel: Annotated[str | None, Query(max_length=20)] = None,
    created_from: Annotated[Timestamp | None, Query(description="Inclusive.")] = None,
    created_to: Annotated[Timestamp | None, Query(description="Exclusive.")] = None,
) -> Many[AuditEntryOut]:
    repository = AuditLogRepository(session, principal.tenant_id)
    statement = repository.listed(
        actor_id=actor_id,
        action=action,
        outcome=outcome,
        object_id=object_id,
        request_id=request_id,
        channel=channel,
        created_from=created_from,
        created_to=created_to,
    )
    entries, meta = await repository.page(statement, page)
    return Many(data=[AuditEntryOut.model_validate(e) for e in entries], meta=meta)


@routes.get("/v1/admin/program-settings", summary="The program's rules (admin, manager)")
async def get_program_settings(
    principal: ProgramReader, session: DbSession
) -> One[ProgramSettings]:
    program = await session.get(Program, principal.tenant_id)
    return One(data=ProgramSettings.model_validate(program))


@routes.patch(
    "/v1/admin/program-settings",
    summary="Change the program's rules (role admin)",
    description="Time zone and home country (spend-limit periods, INTERNATIONAL), limits no card"
    " may exceed (applied at every authorization), whether cards may move between balances, the"
    " FX markup, how long holds live, and clearing tolerances per MCC.",
)
async def update_program_settings(
    body: ProgramSettingsUpdate, principal: ProgramWriter, session: DbSession
) -> One[ProgramSettings]:
    program = await session.get(Program, principal.tenant_id, with_for_update=True)
    assert program is not None
    for name, value in body.model_dump(exclude_unset=True).items():
        if value is None and name != "home_country":
            raise CardcoreError("VALIDATION_ERROR", f"{name} cannot be empty.")
        setattr(program, name, value)
    await session.flush()
    await session.refresh(program)
    return One(data=ProgramSettings.model_validate(program))
