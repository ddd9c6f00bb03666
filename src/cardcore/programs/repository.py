from sqlalchemy import Select, select

from cardcore.kit.repository import TenantRepository
from cardcore.models import AdminUser, ApiKey, Program


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey
    noun = "API key"


class AdminUserRepository(TenantRepository[AdminUser]):
    model = AdminUser
    noun = "admin user"


class ProgramRepository(TenantRepository[Program]):
    """A program is its own tenant: the caller reads only the program it belongs to."""

    model = Program
    noun = "program"

    def readable(self) -> Select[Program]:
        return select(Program).where(Program.id == self.program_id)
