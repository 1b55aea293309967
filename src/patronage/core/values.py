"""Reading loosely typed input values the same way in every service."""

from __future__ import annotations

TRUE_TEXTS = frozenset({"1", "true", "on", "yes"})


def flag(value: object) -> bool:
    """A checkbox or JSON boolean: True, or a text such as "on"/"true"/"1"; an unticked checkbox is not sent."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in TRUE_TEXTS
