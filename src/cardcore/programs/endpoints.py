"""The partner's view of its own program and API keys."""

from typing import Annotated

from fastapi import Path, status

from cardcore.kit.access import Partner
from cardcore.kit.envelope import Many, One
from cardcore.kit.errors import error_responses
from cardcore.kit.pagination import Pagination
from cardcore.kit.routing import router
from cardcore.kit.session import DbSession
from cardcore.programs import service
from cardcore.programs.repository import ApiKeyRepository, ProgramRepository
from cardcore.programs.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ProgramOut

routes = router(
    tags=["programs"],
    encryption="optional",
)

KeyId = Annotated[str, Path(description="An API key id (`key_…`).")]


@routes.get("/v1/program", summary="The caller's program")
async def get_program(principal: Partner, session: DbSession) -> One[ProgramOut]:
    program = await ProgramRepository(session, principal.tenant_id).get_or_404(principal.tenant_id)
    return One(data=ProgramOut.model_validate(program))


@routes.post(
    "/v1/api-keys",
    summary="Create an API key",
    description="Returns the key's secret once. Store it in your secret manager: cardcore "
    "keeps only a hash and cannot show it again. The secret starts with the program's mode: "
    "`ck_live_` or `ck_test_`.",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses("VALIDATION_ERROR", "IDEMPOTENCY_KEY_IN_PROGRESS"),
)
async def create_api_key(
    body: ApiKeyCreate, principal: Partner, session: DbSession
) -> One[ApiKeyCreated]:
    key, secret = await service.create_api_key(
        session, program_id=principal.tenant_id, name=body.name
    )
    await session.refresh(key)
    return One(data=ApiKeyCreated.of(key, secret=secret))


@routes.get("/v1/api-keys", summary="List API keys")
async def list_api_keys(
    principal: Partner, session: DbSession, page: Pagination
) -> Many[ApiKeyOut]:
    repository = ApiKeyRepository(session, principal.tenant_id)
    keys, meta = await repository.page(repository.readable(), page)
    return Many(data=[ApiKeyOut.of(key) for key in keys], meta=meta)


@routes.get(
    "/v1/api-keys/{key_id}", summary="Get an API key", responses=error_responses("NOT_FOUND")
)
async def get_api_key(key_id: KeyId, principal: Partner, session: DbSession) -> One[ApiKeyOut]:
    key = await ApiKeyRepository(session, principal.tenant_id).get_or_404(key_id)
    return One(data=ApiKeyOut.of(key))


@routes.delete(
    "/v1/api-keys/{key_id}",
    summary="Revoke an API key",
    description="The key stops working at once. Revoking a revoked key changes nothing.",
    responses=error_responses("NOT_FOUND"),
)
async def revoke_api_key(key_id: KeyId, principal: Partner, session: DbSession) -> One[ApiKeyOut]:
    repository = ApiKeyRepository(session, principal.tenant_id)
    key = await service.revoke_api_key(
        session, await repository.get_or_404(key_id, for_update=True)
    )
    return One(data=ApiKeyOut.of(key))
