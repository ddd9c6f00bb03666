from cardcore.kit.repository import TenantRepository
from cardcore.models import Balance, MoneyTransfer, PartnerBalance, PaymentContact


class BalanceRepository(TenantRepository[Balance]):
    model = Balance
    noun = "balance"


class PartnerBalanceRepository(TenantRepository[PartnerBalance]):
    model = PartnerBalance
    noun = "partner balance"


class PaymentContactRepository(TenantRepository[PaymentContact]):
    model = PaymentContact
    noun = "payment contact"


class TransferRepository(TenantRepository[MoneyTransfer]):
    model = MoneyTransfer
    noun = "transfer"
