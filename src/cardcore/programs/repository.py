from sqlalchemy import Select, select

from cardcore.kit.repository import TenantRepository
from cardcore.models import AdminUser, ApiKey, Program


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey
    noun = "API key"


class AdminUserRepository(TenantRepository[AdminUser]):
    model = AdminUser
    noun = "admin user"

    async def by_email(self, email: str, *, for_update: bool = False) -> AdminUser | None:
        """The program's admin with this email (trimmed, without regard to case)."""
        statement = self.readable().where(AdminUser.email == email.strip().lower())
        found: AdminUser | None = await self.session.scalar(
            statement.with_for_update() if for_update else statement
        )
        return found


class ProgramRepository(TenantRepository[Program]):
    """A program is its own tenant: the caller reads only the program it belongs to."""

    model = Program
    noun = "program"

    def readable(self) -> Select[Program]:
        return select(Program).where(Program.id == self.program_id)
