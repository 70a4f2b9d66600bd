"""Staff roles and what each may do (least privilege).

A role is a Django group of the same name. ``admin`` may do everything; every other role gets
exactly the capabilities listed for it here, and this table is what the authorisation matrix
test reads, so the code and the documentation cannot drift apart.
"""

from __future__ import annotations

ROLES = {
    "catalog": "Maintains products, categories, variants and stock.",
    "pricing": "Changes prices.",
    "promotions": "Prepares voucher campaigns.",
    "promotions_approver": "Approves campaigns prepared by someone else (four eyes).",
    "support": "Helps shoppers: sees, holds, releases and cancels orders, ships them.",
    "risk": "Investigates fraud and abuse: sees and holds orders, reads the audit trail.",
    "admin": "Everything, including the audit trail and staff accounts.",
}

CAPABILITIES: dict[str, set[str]] = {
    "catalog.edit": {"catalog"},
    "stock.edit": {"catalog"},
    "price.edit": {"pricing"},
    "orders.view_all": {"support", "risk"},
    "orders.hold": {"support", "risk"},
    "orders.release": {"support", "risk"},
    "orders.cancel": {"support"},
    "orders.ship": {"support"},
    "orders.place_phone": {"support"},
    "audit.view": {"risk"},
    "promotions.view": {"promotions", "promotions_approver", "risk", "support"},
    "promotions.edit": {"promotions"},
    "promotions.approve": {"promotions_approver"},
    "promotions.block": {"promotions", "promotions_approver", "risk"},
    "remediation.preview": {"support", "risk", "promotions", "promotions_approver"},
    "remediation.run": {"support", "risk"},
    "deals.manage": {"pricing", "promotions"},
    "deals.view": {"pricing", "promotions", "promotions_approver", "support", "risk"},
    "console.access": {
        "catalog",
        "pricing",
        "promotions",
        "promotions_approver",
        "support",
        "risk",
    },
}


def roles_of(user) -> set[str]:
    if user is None or not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_warenhaus_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True)) & set(ROLES)
        if user.is_superuser:
            cached.add("admin")
        user._warenhaus_roles = cached
    return cached


def can(user, capability: str) -> bool:
    roles = roles_of(user)
    if "admin" in roles:
        return True
    return bool(roles & CAPABILITIES[capability])


def is_staff_member(user) -> bool:
    return bool(roles_of(user))
