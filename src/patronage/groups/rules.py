"""Who in a group may see what of the others. Pure Python: no Django."""

from __future__ import annotations

GUARDIAN = "guardian"
KINDS = ("family", "household", "class", "organisation")
ROLES = ("", GUARDIAN)
NAME_MAX = 150


def sees_member_details(viewer_role: str) -> bool:
    """A guardian sees the other members' checkouts and balances; any other member sees only names."""
    return viewer_role == GUARDIAN


def clean_name(value: object) -> str | None:
    """The group's name, trimmed, or None when it is empty or too long (the caller says which)."""
    text = str(value or "").strip()
    return text if 0 < len(text) <= NAME_MAX else None
