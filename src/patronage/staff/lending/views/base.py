"""What every lending page shares: its tabs, the current library's centers and the choice lists."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.urls import reverse

from patronage.core.errors import NotFound, Refused
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.resources.models import Resource, ResourceType

from ... import fields
from ...admin.views.base import AdminView, FormPage

MANAGE = Permission.MANAGE_RESOURCES
DESK = Permission.CHECK_OUT


def refusal_of(exc: Refused) -> dict[str, Any]:
    """A refusal as ``staff/lending/_reasons.html`` shows it: the message and every reason."""
    return {"message": exc.message, "reasons": exc.reasons}


# The tabs of the section: key, label, route and the permission that shows it.
TABS: tuple[tuple[str, str, str, Permission], ...] = (
    ("reservations", "Reservations", "staff:lending:index", DESK),
    ("availability", "Availability", "staff:lending:availability", DESK),
    ("tickets", "Tickets", "staff:lending:tickets", DESK),
    ("types", "Resource types", "staff:lending:types", MANAGE),
    ("resources", "Resources", "staff:lending:resources", MANAGE),
)


class _LendingTabs(AdminView):
    section = "lending"

    def admin_context(self, title: str) -> dict[str, Any]:
        tabs = [
            {"key": key, "label": label, "url": reverse(route), "current": key == self.tab}
            for key, label, route, needs in TABS
            if self.can(needs)
        ]
        return self.base_context() | {"section": self.section, "tabs": tabs, "title": title}

    def centers(self) -> list[Branch]:
        return list(Branch.objects.filter(library_id=self.library_id, is_checkout_center=True).order_by("name"))

    def center(self, center_id: object) -> Branch:
        """A checkout center of the current library; any other is "not found"."""
        found = Branch.objects.filter(library_id=self.library_id, is_checkout_center=True, pk=_int(center_id)).first()
        if found is None:
            raise NotFound("There is no such checkout center here.")
        return found

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.library.time_zone if self.library else "UTC")

    def local(self, instant: dt.datetime | None) -> str:
        """An instant as the value of a datetime-local field in the library's time zone."""
        return instant.astimezone(self.zone()).strftime("%Y-%m-%dT%H:%M") if instant else ""


class LendingView(_LendingTabs):
    permission = MANAGE


class LendingForm(_LendingTabs, FormPage):
    template = "staff/lending/form.html"
    permission = MANAGE


def _int(value: object) -> int:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else -1


def type_choices(library_id: int, *, empty: str = "—") -> fields.Choices:
    """The library's types as a tree: each under its parent, indented by depth."""
    types = list(ResourceType.objects.filter(library_id=library_id).order_by("name"))
    return ((("", empty),) if empty else ()) + tuple((str(t.pk), label) for t, label in tree_rows(types))


def tree_rows(types: Sequence[ResourceType]) -> list[tuple[ResourceType, str]]:
    children: dict[int | None, list[ResourceType]] = {}
    for kind in types:
        children.setdefault(kind.parent_id, []).append(kind)
    rows: list[tuple[ResourceType, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for kind in children.get(parent, []):
            rows.append((kind, "\u2003" * depth + kind.name))
            walk(kind.pk, depth + 1)

    walk(None, 0)
    return rows


def resource_choices(library_id: int, *, empty: str = "—") -> fields.Choices:
    found = Resource.objects.filter(library_id=library_id).order_by("name", "identifier")
    return ((("", empty),) if empty else ()) + tuple((str(r.pk), str(r)) for r in found)


def center_choices(centers: list[Branch], *, empty: str = "") -> fields.Choices:
    return ((("", empty),) if empty else ()) + tuple((str(c.pk), c.name) for c in centers)
