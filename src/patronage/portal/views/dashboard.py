"""The dashboard: the center's message, the patron's reservations, checkouts, history, groups and standing.

Every list is read in a fixed number of queries, whatever the patron holds (``test_dashboard`` counts them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch
from django.utils.safestring import SafeString, mark_safe

from patronage.circulation import queries as checkout_queries
from patronage.circulation.models import Checkout, CheckoutItem
from patronage.core import clock
from patronage.core.html import sanitize
from patronage.groups import queries as group_queries
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.reservations import queries as reservation_queries
from patronage.reservations.rules import State

from .. import session
from . import library_url
from .mine import STATE_WORDS, MineView, what_of, when, zone_of

HISTORY_PAGE = 10
UPCOMING_MAX = 200  # a patron's open reservations are bounded by the centers' quotas; this is a safety net
# The menu, in the seed's order: (URL name, label). Some pages come from other parts of the portal; a name
# that does not resolve is left out, so the dashboard works either way. A center can turn two of them off.
MENU = (
    ("portal:reservation-new", "New Reservation"),
    ("portal:problems", "Report a Problem"),
    ("portal:calendar", "Email Calendar"),
    ("portal:my-data", "My Data"),
    ("portal:update-details", "Update My Details"),
)


@dataclass(frozen=True)
class CenterSettings:
    """What the dashboard reads of the center's policy: its message and which features it offers."""

    message: SafeString | None = None
    problem_reports: bool = True
    calendar_feed: bool = True


def center_settings(center: Branch | None) -> CenterSettings:
    """The center's portal settings (defaults without a policy row); the message is cleaned again on the way
    out, as it was on save."""
    row = reservation_queries.portal_settings(center.pk) if center is not None else None
    if row is None:
        return CenterSettings()
    text, problem_reports, calendar_feed = row
    message = mark_safe(sanitize(text)) if text else None  # noqa: S308 - nh3 keeps only the allowed tags
    return CenterSettings(message, problem_reports, calendar_feed)


def menu(library_code: str, settings: CenterSettings) -> list[dict[str, str]]:
    """The menu entries whose pages exist and that the center offers."""
    off = {
        "portal:problems": not settings.problem_reports,
        "portal:calendar": not settings.calendar_feed,
    }
    entries = []
    for name, label in MENU:
        if off.get(name):
            continue
        try:
            entries.append({"url": library_url(name, library_code), "label": label})
        except NoReverseMatch:
            continue
    return entries


def upcoming(patron: Patron, now: dt.datetime, href: Callable[[int], str], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Pending and reserved reservations, soonest first; a series is one entry: its next occurrence and how
    many are still ahead."""
    rows = reservation_queries.patron_reservations_with_lines(
        patron.pk, [State.PENDING_APPROVAL.value, State.RESERVED.value], UPCOMING_MAX
    )
    entries: list[dict[str, Any]] = []
    by_series: dict[int, dict[str, Any]] = {}
    for r, lines in rows:
        if r.series_id is not None and r.series_id in by_series:
            by_series[r.series_id]["count"] += 1
            by_series[r.series_id]["awaiting"] |= r.state == State.PENDING_APPROVAL
            continue
        entry = {
            "r": r,
            "href": href(r.pk),
            "what": what_of(lines),
            "state": STATE_WORDS[State(r.state)],
            "awaiting": r.state == State.PENDING_APPROVAL,
            "series": r.series_id is not None,
            "count": 1,
            "started": r.starts_at <= now,
            "starts": when(r.starts_at, zone),
            "ends": when(r.ends_at, zone),
        }
        if r.series_id is not None:
            by_series[r.series_id] = entry
        entries.append(entry)
    return entries


def current_checkouts(
    patron: Patron, now: dt.datetime, href: Callable[[int], str], zone: ZoneInfo
) -> list[dict[str, Any]]:
    """The checkouts not yet completed, soonest due first, with the resources not yet returned."""
    return [
        {
            "c": c,
            "href": href(c.pk),
            "resources": _names(items, returned=False),
            "late": c.due_at < now,
            "due": when(c.due_at, zone),
        }
        for c, items in checkout_queries.open_checkouts_with_items(patron.pk)
    ]


def _names(items: list[CheckoutItem], *, returned: bool) -> list[str]:
    """The items' resource names; without ``returned``, only those still out."""
    return [i.resource.name for i in items if returned or i.returned_at is None]


def history_row(
    checkout: Checkout, items: list[CheckoutItem], href: Callable[[int], str], zone: ZoneInfo
) -> dict[str, Any]:
    returned = when(checkout.completed_at, zone) if checkout.completed_at else ""
    return {"c": checkout, "href": href(checkout.pk), "resources": _names(items, returned=True), "returned": returned}


class DashboardView(MineView):
    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        centers = self.centers()
        if self.center() is None and len(centers) > 1:
            return HttpResponseRedirect(self.url("portal:center"))
        if self.center() is None and len(centers) == 1:
            request.session[session.CENTER] = centers[0].pk
        patron = self.patron()
        now = clock.now()
        zone = zone_of(patron)
        settings = center_settings(self.center())
        problems = [
            {"code": r.code.value, "message": r.patron_message, "remedy": r.remedy}
            for r in self.signed_in().standing.conditions
        ]
        completed = checkout_queries.CheckoutHistory(patron.pk)
        history = Paginator(completed, HISTORY_PAGE).get_page(request.GET.get("page"))
        checkout_href = self.id_url("portal:checkout", "checkout_id")
        checkouts = current_checkouts(patron, now, checkout_href, zone)
        history_rows = [history_row(c, items, checkout_href, zone) for c, items in history]
        context = {
            "problems": problems,
            "my_groups": group_queries.portal_groups(patron),  # My Groups: names; a guardian sees more
            "message": settings.message,
            "menu": menu(self.library.code, settings),
            "upcoming": upcoming(patron, now, self.id_url("portal:reservation", "reservation_id"), zone),
            "checkouts": checkouts,
            "history": history,
            "history_rows": history_rows,
        }
        return self.local("portal/dashboard.html", context)
