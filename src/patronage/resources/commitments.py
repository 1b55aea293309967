"""The registry of what a resource is promised for.

The catalog sits below the reservations that book it, so it cannot ask them directly. The reservations
app registers a finder in its ``AppConfig.ready()``; the catalog asks it before moving a resource to
another type or center and when taking one out of service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

# resource ids and an instant in, {resource id: ids of the open reservations holding it after then} out
Finder = Callable[[Sequence[int], dt.datetime], dict[int, list[int]]]
_finders: dict[str, Finder] = {}


def register_finder(name: str, finder: Finder) -> None:
    _finders[name] = finder


def commitments(resource_ids: Sequence[int], after: dt.datetime) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for finder in _finders.values():
        for resource_id, holders in finder(resource_ids, after).items():
            found.setdefault(resource_id, []).extend(holders)
    return found
