"""The registry of reasons that stop a patron's deletion.

Each domain that holds something outstanding for a patron (debts, loans, reservations) registers
a guard in its AppConfig.ready(). Deletion asks every guard and refuses with all reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import Patron


@dataclass(frozen=True)
class DeletionObstacle:
    code: str
    message: str


Guard = Callable[["Patron"], list[DeletionObstacle]]
_guards: dict[str, Guard] = {}


def register_guard(name: str, guard: Guard) -> None:
    _guards[name] = guard


def obstacles(patron: Patron) -> list[DeletionObstacle]:
    found: list[DeletionObstacle] = []
    for guard in _guards.values():
        found.extend(guard(patron))
    return found
