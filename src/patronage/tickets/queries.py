"""Reading tickets: a patron's own, a library's for staff, and what a patron may point a report at."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.db.models import Q, QuerySet

from patronage.circulation.models import Checkout, CheckoutItem
from patronage.core import clock
from patronage.core.errors import NotFound
from patronage.libraries.models import Branch, Membership
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.reservations.models import CenterPolicy, Reservation, ReservationLine

from .models import Ticket, TicketComment
from .rules import State

WORK = Permission.CHECK_OUT  # who works tickets: the desk staff of the center's library
# How far back a patron's reservations and checkouts are offered as what a report is about.
ABOUT_DAYS = 90
ABOUT_ROWS = 30


def reports_enabled(center: Branch | int) -> bool:
    """Whether the center takes problem reports (a center without its own policy row does)."""
    center_id = center if isinstance(center, int) else center.pk
    found = CenterPolicy.objects.filter(center_id=center_id).values_list("problem_reports_enabled", flat=True)
    value = found.first()
    return True if value is None else bool(value)


def patron_tickets(patron: Patron) -> list[Ticket]:
    """The patron's own tickets, newest first, with their center (one query)."""
    return list(Ticket.objects.filter(reporter=patron).select_related("center").order_by("-created_at", "-id")[:200])


def patron_ticket(patron: Patron, ticket_id: object) -> Ticket:
    """One of the patron's own tickets; anyone else's (or none) is "not found", the same answer."""
    key = str(ticket_id or "")
    found = (
        Ticket.objects.filter(pk=int(key), reporter=patron).select_related("center").first() if key.isdigit() else None
    )
    if found is None:
        raise NotFound("There is no such ticket among yours.")
    return found


def comments(ticket: Ticket, *, for_patron: bool = False) -> list[TicketComment]:
    """The ticket's comments and changes, oldest first; the patron does not see staff-only entries."""
    rows = ticket.comments.order_by("created_at", "id")
    return list(rows.filter(staff_only=False) if for_patron else rows)


def staff_tickets(
    library_ids: Iterable[int],
    *,
    center: int | None = None,
    state: str | None = None,
    assignee: int | None = None,
    unassigned: bool = False,
) -> QuerySet[Ticket]:
    """Tickets of the given libraries, open ones first, most recently changed first."""
    rows = Ticket.objects.filter(library_id__in=list(library_ids))
    if center is not None:
        rows = rows.filter(center_id=center)
    if state:
        rows = rows.filter(state=state)
    if assignee is not None:
        rows = rows.filter(assignee_id=assignee)
    if unassigned:
        rows = rows.filter(assignee__isnull=True)
    return rows.select_related("center", "reporter", "assignee").order_by("-updated_at", "-id")


def open_counts(library_id: int) -> dict[int, int]:
    """Per center, how many tickets are not closed."""
    rows = Ticket.objects.filter(library_id=library_id).exclude(state=State.CLOSED).values_list("center_id", flat=True)
    counts: dict[int, int] = {}
    for center_id in rows:
        counts[center_id] = counts.get(center_id, 0) + 1
    return counts


def assignable_staff(library_id: int) -> list[User]:
    """Staff of the library who may work tickets, by user name."""
    members = Membership.objects.filter(library_id=library_id).select_related("user").prefetch_related("roles")
    found = [
        m.user
        for m in members
        if m.user.is_active and any(WORK.value in (role.permissions or []) for role in m.roles.all())
    ]
    return sorted(found, key=lambda u: u.get_username())


@dataclass(frozen=True)
class About:
    """Something of the patron's own that a report may be about: ``value`` is e.g. "checkout-12"."""

    value: str
    label: str


def about_choices(patron: Patron, center: Branch, *, now: dt.datetime | None = None) -> list[About]:
    """The patron's recent and current reservations and checkouts at the center, and the resources in them."""
    now = now or clock.now()
    since = now - dt.timedelta(days=ABOUT_DAYS)
    zone = ZoneInfo(center.library.time_zone)
    reservations = list(
        Reservation.objects.filter(patron=patron, center=center, ends_at__gte=since)
        .filter(Q(checkout__isnull=True))
        .order_by("-starts_at")[:ABOUT_ROWS]
    )
    checkouts = list(
        Checkout.objects.filter(patron=patron, center=center)
        .filter(Q(completed_at__isnull=True) | Q(completed_at__gte=since))
        .select_related("reservation")
        .order_by("-checked_out_at")[:ABOUT_ROWS]
    )
    choices = [
        About(
            f"checkout-{c.pk}",
            f"Checkout {c.pk}: {c.reservation.title or 'untitled'}, from {_day(c.checked_out_at, zone)}",
        )
        for c in checkouts
    ]
    choices += [
        About(f"reservation-{r.pk}", f"Reservation {r.pk}: {r.title or 'untitled'}, {_day(r.starts_at, zone)}")
        for r in reservations
    ]
    seen: dict[int, str] = {}
    for resource_id, name in own_resources(patron, [c.pk for c in checkouts], [r.pk for r in reservations]):
        seen.setdefault(resource_id, name)
    choices += [About(f"resource-{pk}", f"Resource: {name}") for pk, name in sorted(seen.items(), key=lambda x: x[1])]
    return choices


def own_resources(patron: Patron, checkout_ids: list[int], reservation_ids: list[int]) -> list[tuple[int, str]]:
    items = CheckoutItem.objects.filter(checkout_id__in=checkout_ids, checkout__patron=patron)
    lines = ReservationLine.objects.filter(
        reservation_id__in=reservation_ids, reservation__patron=patron, resource__isnull=False
    )
    return [
        *items.values_list("resource_id", "resource__name"),
        *((pk, name) for pk, name in lines.values_list("resource_id", "resource__name") if pk is not None),
    ]


def is_own_resource(patron: Patron, resource_id: int) -> bool:
    """Whether the patron has had the resource in a checkout or asked for it in a reservation."""
    return (
        CheckoutItem.objects.filter(checkout__patron=patron, resource_id=resource_id).exists()
        or ReservationLine.objects.filter(reservation__patron=patron, resource_id=resource_id).exists()
    )


def _day(instant: dt.datetime, zone: ZoneInfo) -> str:
    return instant.astimezone(zone).strftime("%Y-%m-%d")
