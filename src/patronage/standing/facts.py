"""Facts about a patron that live in apps above standing, spliced into standing's one statement.

Standing may not import the apps that hold them (circulation sits above it), yet it must stay one
query. So such an app registers, in its ``AppConfig.ready()``, an SQL scalar expression for a fact
standing names here: a subquery correlated on the patron's row (alias ``p``), which may use the moment
of the question as ``%s`` (each ``%s`` receives it). A fact nobody registers reads as 0, so standing
works, with fewer conditions, when such an app is not installed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

# The facts standing knows how to judge (see rules.PatronFacts); an app can only fill these in.
KNOWN: tuple[str, ...] = ("late_checkouts", "overdue_owed", "verification_pending")

_registry: dict[str, Callable[[], str]] = {}


def register_fact(name: str, sql: Callable[[], str]) -> None:
    """``sql`` returns the expression; called when the statement is built, so table names can be read."""
    if name not in KNOWN:
        raise ValueError(f"standing does not know the fact {name!r}; add it to facts.KNOWN and rules first")
    _registry[name] = sql
    expressions.cache_clear()


@cache
def expressions() -> tuple[tuple[str, str, int], ...]:
    """Per known fact: its name, the SQL expression (0 when unregistered), and how many ``%s`` it takes.

    Built once (apps register in ``ready()``; a registration builds it anew), since standing asks on every
    decision and the expressions only name tables."""
    found = []
    for name in KNOWN:
        provider = _registry.get(name)
        sql = f"({provider()})" if provider is not None else "0"
        found.append((name, sql, sql.count("%s")))
    return tuple(found)
