"""Small builders for catalog and reservation tests. They go through the services, as real data does."""

from __future__ import annotations

import datetime as dt
import itertools
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from patronage.libraries.models import Branch, Library
from patronage.resources import services as catalog
from patronage.resources.models import Resource, ResourceType
from tests.factories import SYSTEM, make_branch, make_patron

_seq = itertools.count(1)
ZONE = ZoneInfo("America/New_York")  # make_library's time zone
# Monday 3 May 2027, noon in New York: far from both daylight-saving changes.
NOW = dt.datetime(2027, 5, 3, 12, 0, tzinfo=ZONE)


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """A wall-clock time in New York in May 2027 (the 3rd is a Monday)."""
    return dt.datetime(2027, 5, day, hour, minute, tzinfo=ZONE)


def make_center(library: Library, code: str = "lab", **kwargs: Any) -> Branch:
    center = make_branch(library, code, **kwargs)
    if not center.is_checkout_center:
        center.is_checkout_center = True
        center.save(update_fields=["is_checkout_center"])
    return center


def make_type(library: Library, name: str | None = None, *, centers: list[Branch], **data: Any) -> ResourceType:
    return catalog.save_resource_type(
        actor=SYSTEM,
        library=library,
        data={"name": name or f"Type {next(_seq)}", "centers": [c.pk for c in centers], **data},
    )


def make_resource(library: Library, kind: ResourceType, center: Branch, **data: Any) -> Resource:
    n = next(_seq)
    fields = {"identifier": f"R-{n:05d}", "name": f"{kind.name} {n}", "resource_type": kind.pk, "center": center.pk}
    fields.update(data)
    return catalog.save_resource(actor=SYSTEM, library=library, data=fields)


def make_lab(library: Library) -> SimpleNamespace:
    """A checkout center ("lab") lending two laptops (LAP-1 and LAP-2), and a patron in good standing."""
    center = make_center(library)
    laptops = make_type(library, "Laptops", centers=[center])
    return SimpleNamespace(
        library=library,
        center=center,
        laptops=laptops,
        laptop=make_resource(library, laptops, center, identifier="LAP-1"),
        spare=make_resource(library, laptops, center, identifier="LAP-2"),
        patron=make_patron(library),
    )
