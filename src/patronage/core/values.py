"""Reading loosely typed input values the same way in every service."""

from __future__ import annotations

TRUE_TEXTS = frozenset({"1", "true", "on", "yes"})
FALSE_TEXTS = frozenset({"", "0", "false", "off", "no"})


def flag(value: object) -> bool:
    """A checkbox or JSON boolean: True, or a text such as "on"/"true"/"1"; an unticked checkbox is not sent."""
    if isinstance(value, bool):
        return value
    return str(value or "").strip().lower() in TRUE_TEXTS


def yes_or_no(value: object) -> bool | None:
    """``flag`` for a setting that must be said outright: None for anything that is neither a yes nor a no
    (so that a typo such as "maybe" is an error rather than a silent "no")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_TEXTS:
            return True
        if text in FALSE_TEXTS:
            return False
    return None
