"""The dashboard: the center's message, the patron's reservations, checkouts, history, groups and standing.

Every list is read in a fixed number of queries, whatever the patron holds (``test_dashboard`` counts them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.paginator import Paginator
from django.db.models import prefetch_related_objects
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch
from django.utils.safestring import SafeString, mark_safe

from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.core.html import sanitize
from patronage.groups import queries as group_queries
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.reservations.models import CenterPolicy, Reservation
from patronage.reservations.rules import State

from .. import session
from . import library_url
from .mine import STATE_WORDS, MineView, items_prefetch, lines_prefetch, what

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
    row = (
        CenterPolicy.objects.filter(center=center)
        .values_list("portal_message", "problem_reports_enabled", "calendar_feed_enabled")
        .first()
        if center is not None
        else None
    )
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


def upcoming(patron: Patron, now: dt.datetime, href: Callable[[int], str]) -> list[dict[str, Any]]:
    """Pending and reserved reservations, soonest first; a series is one entry: its next occurrence and how
    many are still ahead."""
    rows = list(
        Reservation.objects.filter(patron_id=patron.pk, state__in=[State.PENDING_APPROVAL, State.RESERVED])
        .select_related("center")
        .prefetch_related(lines_prefetch())
        .order_by("starts_at", "id")[:UPCOMING_MAX]
    )
    entries: list[dict[str, Any]] = []
    by_series: dict[int, dict[str, Any]] = {}
    for r in rows:
        if r.series_id is not None and r.series_id in by_series:
            by_series[r.series_id]["count"] += 1
            by_series[r.series_id]["awaiting"] |= r.state == State.PENDING_APPROVAL
            continue
        entry = {
            "r": r,
            "href": href(r.pk),
            "what": what(r),
            "state": STATE_WORDS[State(r.state)],
            "awaiting": r.state == State.PENDING_APPROVAL,
            "series": r.series_id is not None,
            "count": 1,
            "started": r.starts_at <= now,
        }
        if r.series_id is not None:
            by_series[r.series_id] = entry
        entries.append(entry)
    return entries


def current_checkouts(patron: Patron, now: dt.datetime, href: Callable[[int], str]) -> list[dict[str, Any]]:
    rows = Checkout.objects.filter(patron_id=patron.pk, completed_at__isnull=True).select_related("center")
    return [
        {"c": c, "href": href(c.pk), "resources": [], "late": c.due_at < now} for c in rows.order_by("due_at", "id")
    ]


def with_items(current: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    """The resources of the current checkouts (those not yet returned) and of the history's page, read in one
    statement for both lists."""
    checkouts = [e["c"] for e in current] + [e["c"] for e in history]
    prefetch_related_objects(checkouts, items_prefetch())
    for e in current:
        e["resources"] = [i.resource.name for i in e["c"].items.all() if i.returned_at is None]
    for e in history:
        e["resources"] = [i.resource.name for i in e["c"].items.all()]


class DashboardView(MineView):
    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        centers = self.centers()
        if self.center() is None and len(centers) > 1:
            return HttpResponseRedirect(self.url("portal:center"))
        if self.center() is None and len(centers) == 1:
            request.session[session.CENTER] = centers[0].pk
        patron = self.patron()
        now = clock.now()
        settings = center_settings(self.center())
        problems = [
            {"code": r.code.value, "message": r.patron_message, "remedy": r.remedy}
            for r in self.signed_in().standing.conditions
        ]
        completed = (
            Checkout.objects.filter(patron_id=patron.pk, completed_at__isnull=False)
            .select_related("center")
            .order_by("-completed_at", "-id")
        )
        history = Paginator(completed, HISTORY_PAGE).get_page(request.GET.get("page"))
        checkout_href = self.id_url("portal:checkout", "checkout_id")
        checkouts = current_checkouts(patron, now, checkout_href)
        history_rows = [{"c": c, "href": checkout_href(c.pk), "resources": []} for c in history]
        with_items(checkouts, history_rows)
        context = {
            "problems": problems,
            "my_groups": group_queries.portal_groups(patron),  # My Groups: names; a guardian sees more
            "message": settings.message,
            "menu": menu(self.library.code, settings),
            "upcoming": upcoming(patron, now, self.id_url("portal:reservation", "reservation_id")),
            "checkouts": checkouts,
            "history": history,
            "history_rows": history_rows,
        }
        return self.local("portal/dashboard.html", context)
