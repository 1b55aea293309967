"""The one place the application reads the time.

Rules take times as arguments; services ask this module. Tests move the clock with
``frozen(at)`` instead of patching ``datetime`` in many places.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

from django.utils import timezone

_frozen: dt.datetime | None = None


def now() -> dt.datetime:
    """The current instant, timezone-aware (UTC)."""
    return _frozen if _frozen is not None else timezone.now()


def today(tz: str | ZoneInfo) -> dt.date:
    """Today's date on the wall calendar of the given time zone (a library's)."""
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    return now().astimezone(zone).date()


@contextlib.contextmanager
def frozen(at: dt.datetime) -> Iterator[None]:
    """Make ``now()`` return ``at`` inside the block (tests and data generators)."""
    global _frozen
    if at.tzinfo is None:
        raise ValueError("frozen() needs an aware datetime")
    previous, _frozen = _frozen, at
    try:
        yield
    finally:
        _frozen = previous
