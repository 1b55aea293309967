"""Calendar feeds: issuing, revoking and e-mailing a patron's feed address, and writing the feed.

The feed is an RFC 5545 calendar published for subscription (``METHOD:PUBLISH``, never ``REQUEST``: it
is not an invitation). Each reservation is one event with the UID ``reservation-<id>@<domain>`` from
booking to return, so a calendar updates the event in place when the reservation is picked up, moved or
cancelled; ``SEQUENCE`` is the number of recorded changes of the reservation. Times are written in UTC
(``…Z``), which needs no VTIMEZONE and cannot go wrong across daylight-saving changes. Cancelled and
rejected reservations stay in the feed as ``STATUS:CANCELLED`` for ``PATRONAGE_CALENDAR_CANCELLED_DAYS``
(default 30) after the change, so subscribed calendars drop them rather than keep a stale copy.

Writing a feed takes a fixed number of queries whatever the patron holds (see ``calendar_bytes``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Prefetch, Q
from icalendar import Calendar, Event

from patronage.circulation.models import Checkout, CheckoutItem
from patronage.core import audit, clock, tokens
from patronage.core.errors import DomainError, FieldError
from patronage.libraries.models import Branch, Library
from patronage.outbox import services as outbox
from patronage.patrons.models import Patron
from patronage.reservations.models import CenterPolicy, Reservation, ReservationLine
from patronage.reservations.rules import State

from .models import CalendarFeed

_TOKEN_SALT = "patronage.feeds.calendar"  # noqa: S105 - an HMAC key salt name, not a secret
PRODID = "-//Patronage//Patron calendar feed//EN"
# Shown in the feed: booked and current states; cancelled ones for a while (see the module's docstring).
LIVE_STATES = (State.PENDING_APPROVAL, State.RESERVED, State.CHECKED_OUT)
GONE_STATES = (State.CANCELLED, State.REJECTED)
MAX_EVENTS = 500


class FeedsOff(DomainError):
    code = "calendar_feed_off"
    status = 403


def cancelled_days() -> int:
    return int(getattr(settings, "PATRONAGE_CALENDAR_CANCELLED_DAYS", 30))


def uid_domain() -> str:
    """The right-hand side of every UID: PATRONAGE_CALENDAR_DOMAIN, else the outbox's mail domain."""
    return str(getattr(settings, "PATRONAGE_CALENDAR_DOMAIN", "") or outbox.mail_domain())


def token_of(feed: CalendarFeed) -> str:
    return tokens.salted_token(_TOKEN_SALT, feed.salt)


# --- which centers offer the feed ---------------------------------------------------------------------------


def _feed_centers(library_id: int) -> set[int]:
    """The library's checkout centers whose feed is on (a center without its own policy row: on)."""
    on = Q(reservation_policy__isnull=True) | Q(reservation_policy__calendar_feed_enabled=True)
    return set(
        Branch.objects.filter(library_id=library_id, is_checkout_center=True).filter(on).values_list("pk", flat=True)
    )


def enabled_at(center: Branch | int) -> bool:
    center_id = center if isinstance(center, int) else center.pk
    value = CenterPolicy.objects.filter(center_id=center_id).values_list("calendar_feed_enabled", flat=True).first()
    return True if value is None else bool(value)


# --- the patron's address -------------------------------------------------------------------------------------


def live_feed(patron: Patron) -> CalendarFeed | None:
    return CalendarFeed.objects.filter(patron=patron, revoked_at__isnull=True).first()


@transaction.atomic
def issue(*, actor: audit.Actor, patron: Patron) -> tuple[CalendarFeed, str]:
    """A new feed address for the patron; the one before (if any) stops working at once."""
    Patron.objects.select_for_update().filter(pk=patron.pk).first()
    now = clock.now()
    replaced = CalendarFeed.objects.filter(patron=patron, revoked_at__isnull=True).update(revoked_at=now)
    salt = secrets.token_urlsafe(32)
    feed = CalendarFeed(patron=patron, salt=salt, created_at=now)
    token = token_of(feed)
    feed.digest = tokens.digest(token)
    feed.save()
    audit.record(
        actor, "calendar_feed.issued", library_id=patron.library_id, patron_id=patron.pk, feed=feed.pk,
        replaced=replaced,
    )  # fmt: skip
    return feed, token


@transaction.atomic
def revoke(*, actor: audit.Actor, patron: Patron) -> int:
    """Stop the patron's feed address; a calendar asking for it is told it is not found."""
    count = CalendarFeed.objects.filter(patron=patron, revoked_at__isnull=True).update(revoked_at=clock.now())
    if count:
        audit.record(actor, "calendar_feed.revoked", library_id=patron.library_id, patron_id=patron.pk)
    return count


def feed_for_token(token: str) -> CalendarFeed | None:
    """The live feed with this token, its patron and library loaded (one query), or None."""
    if not token or len(token) > 100:
        return None
    return (
        CalendarFeed.objects.filter(digest=tokens.digest(token), revoked_at__isnull=True)
        .select_related("patron", "patron__library")
        .first()
    )


@transaction.atomic
def email_address(*, actor: audit.Actor, patron: Patron, url: str) -> None:
    """Queue an e-mail with the feed address to the patron's primary address (sent after commit)."""
    if not patron.primary_email:
        raise FieldError(
            "email", "Your account has no e-mail address. Copy the address from this page, or ask the library."
        )
    library: Library = patron.library
    text = (
        f"Hello {patron.first_name},\n\n"
        f"this is the address of your calendar of checkouts and reservations at {library.name}:\n\n{url}\n\n"
        'Add it to your calendar program as a subscription ("add calendar from URL"). Anyone with the address '
        "can read the calendar: keep it to yourself. You can stop it or make a new one in the portal under "
        "Email Calendar.\n"
    )
    outbox.enqueue(
        kind="calendar_feed", to=[patron.primary_email], subject=f"Your calendar address at {library.name}",
        text=text, library=library, patron_id=patron.pk,
    )  # fmt: skip
    audit.record(actor, "calendar_feed.emailed", library_id=patron.library_id, patron_id=patron.pk)


# --- the feed itself --------------------------------------------------------------------------------------------


def feed_reservations(patron: Patron, centers: Iterable[int], *, now: dt.datetime) -> list[Reservation]:
    """The reservations shown: open ones not yet over, checked-out ones not yet returned, recently cancelled.

    Three queries: the reservations with their change count, center and checkout; their lines with the
    resources' names; the checked-out items with theirs.
    """
    live = Q(state__in=[s.value for s in LIVE_STATES]) & (Q(ends_at__gte=now) | Q(state=State.CHECKED_OUT))
    gone = Q(state__in=[s.value for s in GONE_STATES], updated_at__gte=now - dt.timedelta(days=cancelled_days()))
    lines = ReservationLine.objects.select_related("resource", "resource_type").order_by("id")
    items = CheckoutItem.objects.select_related("resource").order_by("id")
    return list(
        Reservation.objects.filter(patron=patron, center_id__in=list(centers))
        .filter(live | gone)
        .select_related("center", "checkout")
        .annotate(changes=Count("events"))
        .prefetch_related(Prefetch("lines", queryset=lines), Prefetch("checkout__items", queryset=items))
        .order_by("starts_at", "id")[:MAX_EVENTS]
    )


def _what(reservation: Reservation) -> list[str]:
    checkout: Checkout | None = getattr(reservation, "checkout", None)
    if checkout is not None and reservation.state == State.CHECKED_OUT:
        return [item.resource.name for item in checkout.items.all() if item.returned_at is None]
    names = []
    for line in reservation.lines.all():
        if line.resource is not None:
            names.append(line.resource.name)
        elif line.resource_type is not None:
            names.append(f"{line.quantity} x {line.resource_type.name}")
    return names


def event_of(reservation: Reservation, *, domain: str, now: dt.datetime) -> Event:
    state = State(reservation.state)
    checkout: Checkout | None = getattr(reservation, "checkout", None)
    checked_out = state == State.CHECKED_OUT and checkout is not None
    label = reservation.title or "Reservation"
    event = Event()
    event.add("uid", f"reservation-{reservation.pk}@{domain}")
    event.add("dtstamp", now.astimezone(dt.UTC))
    start = checkout.checked_out_at if checked_out and checkout else reservation.starts_at
    end = checkout.due_at if checked_out and checkout else reservation.ends_at
    event.add("dtstart", start.astimezone(dt.UTC))
    event.add("dtend", max(end, start + dt.timedelta(minutes=1)).astimezone(dt.UTC))
    event.add("last-modified", reservation.updated_at.astimezone(dt.UTC))
    # Creation is the first recorded change; each later one (approval, edit, pickup, cancel) raises it.
    event.add("sequence", max(int(getattr(reservation, "changes", 1)) - 1, 0))
    if checked_out:
        event.add("summary", f"Checked out: {label} (due back)")
    elif state == State.PENDING_APPROVAL:
        event.add("summary", f"Reservation awaiting approval: {label}")
    elif state in GONE_STATES:
        event.add("summary", f"Cancelled: {label}")
    else:
        event.add("summary", f"Reservation: {label}")
    event.add("location", reservation.center.name)
    what = _what(reservation)
    lines = [f"{state.label} at {reservation.center.name}."]
    if what:
        lines.append("Resources: " + ", ".join(what) + ".")
    event.add("description", "\n".join(lines))
    event.add(
        "status",
        "CANCELLED" if state in GONE_STATES else "TENTATIVE" if state == State.PENDING_APPROVAL else "CONFIRMED",
    )
    event.add("transp", "OPAQUE")
    return event


def calendar_bytes(feed: CalendarFeed, *, now: dt.datetime | None = None) -> bytes | None:
    """The feed as iCalendar bytes, or None when no checkout center of the patron's library offers feeds.

    Four queries after ``feed_for_token``: the centers whose feed is on, the reservations, their lines and
    their checked-out items.
    """
    now = now or clock.now()
    patron = feed.patron
    centers = _feed_centers(patron.library_id)
    if not centers:
        return None
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"{patron.library.name}: my checkouts and reservations")
    calendar.add("refresh-interval", dt.timedelta(hours=1), parameters={"VALUE": "DURATION"})
    domain = uid_domain()
    for reservation in feed_reservations(patron, centers, now=now):
        calendar.add_component(event_of(reservation, domain=domain, now=now))
    return calendar.to_ical()
