from cardcore.kit.repository import TenantRepository
from cardcore.models import Address, Corporation, User


class UserRepository(TenantRepository[User]):
    model = User
    noun = "user"


class AddressRepository(TenantRepository[Address]):
    model = Address
    noun = "address"


class CorporationRepository(TenantRepository[Corporation]):
    model = Corporation
    noun = "corporation"
