"""Pure rules of online account updates: resolving the access options level by level, and postal codes.

Plain Python (no Django), so they are tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

OFF, REQUEST, DIRECT = "off", "request", "direct"
MODES = (OFF, REQUEST, DIRECT)
# The options a branch profile may set, each falling back to the library's and then to these defaults.
# Address, e-mail and phone changes wait for staff by default: the library always knows where its items go.
SYSTEM_DEFAULTS: Mapping[str, object] = {
    "may_change_notification_method": True,
    "confirmation_email": True,
    "address_change": REQUEST,
    "email_change": REQUEST,
    "phone_change": REQUEST,
}
OPTION_NAMES = tuple(SYSTEM_DEFAULTS)
FLAG_OPTIONS = ("may_change_notification_method", "confirmation_email")
MODE_OPTIONS = ("address_change", "email_change", "phone_change")
LABELS: Mapping[str, str] = {
    "may_change_notification_method": "Patron can change notification method",
    "confirmation_email": "Confirmation e-mail to patron",
    "address_change": "Patron address: change allowed",
    "email_change": "E-mail address: change allowed",
    "phone_change": "Phone number: change allowed",
}


@dataclass(frozen=True)
class Level:
    """One level's stored values (``None`` or "" for "as the level above") and how to name it."""

    name: str
    values: Mapping[str, object]


@dataclass(frozen=True)
class Resolved:
    """The options in force for one place, each with the level it came from."""

    values: Mapping[str, object]
    sources: Mapping[str, str]
    phone_validation: bool
    branch_name: str = ""

    def mode(self, option: str) -> str:
        return str(self.values[option])

    def flag(self, option: str) -> bool:
        return bool(self.values[option])


def resolve(levels: tuple[Level, ...], *, phone_validation: bool, branch_name: str = "") -> Resolved:
    """The first level (most specific first) that sets an option decides it; else the system default."""
    values: dict[str, object] = {}
    sources: dict[str, str] = {}
    for option in OPTION_NAMES:
        for level in levels:
            value = level.values.get(option)
            if value is not None and value != "":
                values[option], sources[option] = value, level.name
                break
        else:
            values[option], sources[option] = SYSTEM_DEFAULTS[option], "system default"
    return Resolved(values, sources, phone_validation, branch_name)


def normalise_postal_code(text: str) -> str:
    """Capitals and single spaces, so " sw1a  1aa" and "SW1A 1AA" are the same code."""
    return " ".join(str(text).upper().split())
