"""Staff permissions: one per action. Roles are named sets of these, per library."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    VIEW_PATRONS = "view_patrons"
    EDIT_PATRON = "edit_patron"
    BLOCK_PATRON = "block_patron"
    DELETE_PATRON = "delete_patron"
    DOWNLOAD_PATRON_DATA = "download_patron_data"
    ADD_FEES = "add_fees"
    TAKE_PAYMENTS = "take_payments"
    WAIVE_FEES = "waive_fees"
    CONFIGURE_LIBRARY = "configure_library"
    VIEW_AUDIT_LOG = "view_audit_log"
    MANAGE_RESOURCES = "manage_resources"
    OVERRIDE_RESERVATION_RULES = "override_reservation_rules"
    CHECK_OUT = "check_out_resources"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Permission.VIEW_PATRONS: "Patrons - View patrons",
    Permission.EDIT_PATRON: "Patrons - Edit patron data",
    Permission.BLOCK_PATRON: "Patrons - Block/unblock patron",
    Permission.DELETE_PATRON: "Patrons - Delete patron",
    Permission.DOWNLOAD_PATRON_DATA: "Patrons - Download patron data",
    Permission.ADD_FEES: "Debts - Add fees",
    Permission.TAKE_PAYMENTS: "Debts - Take payments",
    Permission.WAIVE_FEES: "Debts - Waive fees",
    Permission.CONFIGURE_LIBRARY: "Administration - Configure the library",
    Permission.VIEW_AUDIT_LOG: "Administration - View the audit log",
    Permission.MANAGE_RESOURCES: "Resources - Manage resource types, resources and authorizations",
    Permission.OVERRIDE_RESERVATION_RULES: "Reservations - Override reservation rules",
    Permission.CHECK_OUT: "Reservations - Check resources out and in",
}

# The roles a new library starts with; administrators may edit them or add others.
DEFAULT_ROLES: dict[str, frozenset[Permission]] = {
    "Desk staff": frozenset(
        {Permission.VIEW_PATRONS, Permission.TAKE_PAYMENTS, Permission.ADD_FEES, Permission.CHECK_OUT}
    ),
    "Patron administrator": frozenset(
        {
            Permission.VIEW_PATRONS,
            Permission.EDIT_PATRON,
            Permission.BLOCK_PATRON,
            Permission.DELETE_PATRON,
            Permission.DOWNLOAD_PATRON_DATA,
            Permission.ADD_FEES,
            Permission.TAKE_PAYMENTS,
            Permission.WAIVE_FEES,
        }
    ),
    "Library administrator": frozenset(Permission),
}
