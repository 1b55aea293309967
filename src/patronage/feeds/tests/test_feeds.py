"""The calendar feed: the patron's address (made, shown, e-mailed, replaced, stopped) and the RFC 5545 feed a
calendar program reads, parsed with the icalendar library as a calendar would."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from icalendar import Calendar

from patronage.circulation import services as circulation
from patronage.core import clock
from patronage.core.models import AuditEvent
from patronage.feeds.models import CalendarFeed
from patronage.libraries.models import Branch, Library
from patronage.outbox.models import OutboxMessage
from patronage.patrons.models import Patron
from patronage.reservations import services as reservations
from patronage.reservations.models import CenterPolicy
from patronage.resources.models import Resource
from tests.factories import SYSTEM
from tests.lending_portal import book, new_patron

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def feed_path(client: Client) -> str:
    """Make the address on the calendar page and read it back from the page, as the patron would."""
    assert client.post("/portal/north/calendar/issue/").status_code == 302
    page = client.get("/portal/north/calendar/").content.decode()
    found = re.search(r'id="feed-url" readonly value="http://testserver(/portal/feed/[^"]+\.ics)"', page)
    assert found, page
    return found.group(1)


def parsed(client: Client, path: str) -> Calendar:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"] == "text/calendar; charset=utf-8"
    return Calendar.from_ical(response.content)


def events(calendar: Calendar) -> dict[str, Any]:
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_the_feed_holds_the_patrons_events_with_stable_uids_and_sequence(
    portal: Client, patron: Patron, center: Branch, camera: Resource, library: Library
) -> None:
    first = book(patron, center, camera, days=3, title="Film class")
    second = book(patron, center, camera, days=5, title="Interview")
    other = new_patron(library, "P-2002", "Alan", "Turing")
    book(other, center, camera, days=7, title="Alan's secret shoot")
    path = feed_path(portal)
    calendar = parsed(Client(), path)  # no session: the token is the key
    assert str(calendar["VERSION"]) == "2.0"
    assert "Patronage" in str(calendar["PRODID"])
    assert str(calendar["METHOD"]) == "PUBLISH"
    found = events(calendar)
    uid = f"reservation-{first.pk}@"
    assert sorted(u.split("@")[0] for u in found) == [f"reservation-{first.pk}", f"reservation-{second.pk}"]
    one = next(e for u, e in found.items() if u.startswith(uid))
    assert int(one["SEQUENCE"]) == 0
    assert str(one["STATUS"]) == "CONFIRMED"
    assert str(one["SUMMARY"]) == "Reservation: Film class"
    assert str(one["LOCATION"]) == "Media Lab"
    assert "Camera One" in str(one["DESCRIPTION"])
    assert one.decoded("DTSTART") == first.starts_at
    assert one.decoded("DTEND") == first.ends_at
    assert "DTSTAMP" in one
    body = Client().get(path).content.decode()
    assert "Alan" not in body
    assert "Grace" not in body
    assert "Hopper" not in body
    assert "METHOD:REQUEST" not in body
    assert "ORGANIZER" not in body

    # Cancelled: same UID, SEQUENCE raised, STATUS:CANCELLED, still in the feed.
    reservations.cancel_reservation(actor=SYSTEM, reservation=first)
    again = events(parsed(Client(), path))
    gone = next(e for u, e in again.items() if u.startswith(uid))
    assert str(gone["STATUS"]) == "CANCELLED"
    assert int(gone["SEQUENCE"]) == 1
    # ... for the configured while only.
    with clock.frozen(clock.now() + dt.timedelta(days=31)):
        later = events(parsed(Client(), path))
    assert not any(u.startswith(uid) for u in later)


def test_a_checkout_is_the_same_event_until_it_is_returned(
    portal: Client, patron: Patron, center: Branch, camera: Resource
) -> None:
    reservation = book(patron, center, camera, days=1)
    path = feed_path(portal)
    with clock.frozen(reservation.starts_at + dt.timedelta(minutes=5)):
        circulation.check_out(actor=SYSTEM, reservation=reservation, scanned=["CAM-1"])
        event = next(iter(events(parsed(Client(), path)).values()))
        assert str(event["UID"]).startswith(f"reservation-{reservation.pk}@")
        assert str(event["SUMMARY"]).startswith("Checked out:")
        assert int(event["SEQUENCE"]) == 1
    # Late, still out: still shown.
    with clock.frozen(reservation.ends_at + dt.timedelta(days=2)):
        assert len(events(parsed(Client(), path))) == 1


def test_times_are_right_across_the_change_to_summer_time(
    portal: Client, patron: Patron, center: Branch, camera: Resource
) -> None:
    path = feed_path(portal)  # made now; the feed itself needs no session
    with clock.frozen(dt.datetime(2027, 3, 20, 9, 0, tzinfo=dt.UTC)):
        for day in (26, 29):  # Berlin moves to summer time on 28 March 2027
            start = dt.datetime(2027, 3, day, 10, 0, tzinfo=BERLIN)
            reservations.create_reservation(
                actor=SYSTEM, patron=patron, center=center, starts_at=start, ends_at=start + dt.timedelta(hours=2),
                lines=[{"resource": camera.pk}],
            )  # fmt: skip
        body = Client().get(path).content.decode()
        found = sorted(parsed(Client(), path).walk("VEVENT"), key=lambda e: e.decoded("DTSTART"))
    assert "DTSTART:20270326T090000Z" in body
    assert "DTSTART:20270329T080000Z" in body
    assert [e.decoded("DTSTART").astimezone(BERLIN).hour for e in found] == [10, 10]


def test_revoked_and_replaced_addresses_answer_not_found(portal: Client, patron: Patron) -> None:
    old = feed_path(portal)
    new = feed_path(portal)  # "make a new address"
    assert old != new
    assert Client().get(old).status_code == 404
    assert Client().get(new).status_code == 200
    assert portal.post("/portal/north/calendar/revoke/").status_code == 302
    assert Client().get(new).status_code == 404
    assert Client().get("/portal/feed/not-a-token.ics").status_code == 404
    assert not CalendarFeed.objects.filter(revoked_at__isnull=True).exists()
    assert CalendarFeed.objects.count() == 2
    assert AuditEvent.objects.filter(action="calendar_feed.revoked", patron_id=patron.pk).exists()


def test_the_token_is_long_random_and_stored_only_as_salt_and_digest(portal: Client) -> None:
    path = feed_path(portal)
    token = path.removeprefix("/portal/feed/").removesuffix(".ics")
    assert len(token) >= 43  # 256 bits
    row = CalendarFeed.objects.get()
    assert token not in (row.salt, row.digest)
    assert "sessionid" not in Client().get(path).cookies


def test_the_feed_off_at_every_center_answers_not_found(portal: Client, center: Branch) -> None:
    path = feed_path(portal)
    CenterPolicy.objects.filter(center=center).update(calendar_feed_enabled=False)
    assert Client().get(path).status_code == 404
    page = portal.get("/portal/north/calendar/").content.decode()
    assert "does not offer the calendar feed" in page
    assert "Make a new address" not in page
    assert "Stop the calendar feed" in page
    assert portal.post("/portal/north/calendar/issue/").status_code == 302
    assert CalendarFeed.objects.filter(revoked_at__isnull=True).count() == 1  # nothing new was made


def test_email_calendar_queues_the_address_to_the_patron(portal: Client, patron: Patron) -> None:
    assert portal.post("/portal/north/calendar/email/").status_code == 302
    message = OutboxMessage.objects.get(kind="calendar_feed")
    assert message.to == [patron.primary_email]
    path = re.search(r"http://testserver(/portal/feed/\S+\.ics)", message.text)
    assert path is not None
    assert Client().get(path.group(1)).status_code == 200


def test_the_feed_takes_a_fixed_number_of_queries(
    portal: Client, patron: Patron, center: Branch, camera: Resource, django_assert_max_num_queries: Any
) -> None:
    path = feed_path(portal)
    book(patron, center, camera, days=2)
    with django_assert_max_num_queries(6):
        Client().get(path)
    for day in range(3, 9):
        book(patron, center, camera, days=day)
    with django_assert_max_num_queries(6):
        assert len(events(parsed(Client(), path))) == 7


def test_text_with_markup_or_line_breaks_does_not_break_the_feed(
    portal: Client, patron: Patron, center: Branch, camera: Resource
) -> None:
    book(patron, center, camera, title="Shoot;\nBEGIN:VEVENT,<b>x</b>")
    calendar = parsed(Client(), feed_path(portal))
    assert len(calendar.walk("VEVENT")) == 1
    assert "BEGIN:VEVENT,<b>x</b>" in str(calendar.walk("VEVENT")[0]["SUMMARY"])
