"""Which ops roles may do what: the one table that decides. Later features add their rows."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    EMPLOYEE = "employee"


ALL_ROLES = frozenset(Role)

ROLE_MATRIX: dict[str, frozenset[Role]] = {
    "admin_users.manage": frozenset({Role.ADMIN}),
    "network_keys.create": frozenset({Role.ADMIN}),
    "audit_log.read": frozenset({Role.ADMIN, Role.MANAGER}),
    "admin.me": ALL_ROLES,
    "kyc.review": frozenset({Role.ADMIN, Role.MANAGER}),
    "partner_balances.manage": frozenset({Role.ADMIN}),
    "partner_balances.read": frozenset({Role.ADMIN, Role.MANAGER}),
    "balances.summary": frozenset({Role.ADMIN, Role.MANAGER}),
    "transfers.settle": frozenset({Role.ADMIN, Role.MANAGER}),
    # Issuer-console card duties: create card — admin, manager; reset CVV, order physical card,
    # activate — every role; full card data — nobody (there is no row for it: reveal is not an
    # admin route).
    "products.manage": frozenset({Role.ADMIN}),
    "cards.create": frozenset({Role.ADMIN, Role.MANAGER}),
    "cards.service": ALL_ROLES,
    # Customer service reads every cardholder, card, balance, transaction, fee line and event
    # (card data masked: reveal is no ops route) and freezes a card on a call; a manager also
    # lifts a lock.
    "customers.read": ALL_ROLES,
    "cards.read": ALL_ROLES,
    "balances.read": ALL_ROLES,
    "transactions.read": ALL_ROLES,
    "cards.freeze": ALL_ROLES,
    "cards.unlock": frozenset({Role.ADMIN, Role.MANAGER}),
    "events.read": ALL_ROLES,
    "fee_lines.read": ALL_ROLES,
    "fx.read": frozenset({Role.ADMIN, Role.MANAGER}),
    "fx.write": frozenset({Role.ADMIN}),
    "program.read": frozenset({Role.ADMIN, Role.MANAGER}),
    "program.write": frozenset({Role.ADMIN}),
    "fees.schedules.write": frozenset({Role.ADMIN}),
    "fees.read": frozenset({Role.ADMIN, Role.MANAGER}),
    "fees.refund": frozenset({Role.ADMIN, Role.MANAGER}),
    # The zone PIN key shared with the card processor: installed by admins, shown by its KCV.
    "zone_pin_keys.manage": frozenset({Role.ADMIN}),
    "zone_pin_keys.read": frozenset({Role.ADMIN, Role.MANAGER}),
}


def allowed(role: str | None, action: str) -> bool:
    return role is not None and role in ROLE_MATRIX[action]
