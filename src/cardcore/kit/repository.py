"""Tenant scoping, in one place.

Every read of a program-owned table goes through `TenantRepository.readable()`, which adds the
caller's `program_id`; each feature's `repository.py` builds its queries on it, and routes and
services never write that filter themselves (tests/test_architecture.py fails when one does).
Another program's id therefore behaves exactly like an id that does not exist: 404, with no
hint that it does.
"""

from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from cardcore.kit.envelope import ListMeta
from cardcore.kit.errors import NotFound
from cardcore.kit.filters import matching_id
from cardcore.kit.pagination import PageParams, paginate
from cardcore.models import ids

M = TypeVar("M")


class TenantRepository(Generic[M]):
    model: ClassVar[type[Any]]
    # How the object is named in a 404 message ("No such API key.").
    noun: ClassVar[str] = "object"

    def __init__(self, session: AsyncSession, program_id: str) -> None:
        self.session = session
        self.program_id = program_id

    @property
    def id_prefix(self) -> str:
        prefix: str = self.model.__table__.c.id.type.prefix
        return prefix

    def readable(self) -> Select[M]:
        return select(self.model).where(self.model.program_id == self.program_id)

    def matching(
        self,
        *equal: tuple[Any, object | None],
        created_from: datetime | None = None,
        created_to: datetime | None = None,
    ) -> Select[M]:
        """The readable rows whose column equals the value in each (column, value) pair where a
        value is given, made from `created_from` (inclusive) to `created_to` (exclusive). A
        malformed id given for an id column matches nothing, as an unknown one does."""
        statement = self.readable()
        for column, value in equal:
            if value is None:
                continue
            if isinstance(column.type, ids.PrefixedId):
                statement = statement.where(matching_id(column, str(value)))
            else:
                statement = statement.where(column == value)
        if created_from is not None:
            statement = statement.where(self.model.created_at >= created_from)
        if created_to is not None:
            statement = statement.where(self.model.created_at < created_to)
        return statement

    async def get(self, public_id: str | None, *, for_update: bool = False) -> M | None:
        if public_id is None or not ids.is_valid(self.id_prefix, public_id):
            return None
        statement = self.readable().where(self.model.id == public_id)
        if for_update:
            statement = statement.with_for_update()
        found: M | None = await self.session.scalar(statement)
        return found

    async def get_or_404(self, public_id: str | None, *, for_update: bool = False) -> M:
        found = await self.get(public_id, for_update=for_update)
        if found is None:
            raise NotFound(self.noun)
        return found

    async def page(self, statement: Select[M], params: PageParams) -> tuple[list[M], ListMeta]:
        return await paginate(self.session, statement, self.model.id, params)
