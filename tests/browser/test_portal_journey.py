"""A patron's whole visit to the portal in a real browser, from sign-in to the calendar feed.

Grace signs in with the keyboard, picks the Media Lab out of two centers, books a weekly reservation of
Laptop One and one camera (refused first, because Laptop One is taken on one of the dates: the error
panel is scanned with axe in normal and high-contrast mode, and she takes the free laptop it offers),
finds the series as one entry on her dashboard, edits the first occurrence (the lab approves portal
reservations, so it is still pending and may be changed), cancels the second, copies a checkout she
completed in April, reports a problem, and subscribes to her calendar feed, which must parse with
``icalendar`` and hold one event per occurrence, the cancelled one CANCELLED.

The clock is frozen (``core.clock`` is one module-wide value, so the live server's thread sees it too):
"now" is Monday 3 May 2027, noon in New York, the library's time zone.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.urls import reverse

from patronage.circulation import services as desk
from patronage.core import clock
from patronage.credentials import services as credentials
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import NOW, ZONE, make_center, make_resource, make_type
from patronage.tickets.models import Ticket
from tests.browser.conftest import axe_violations, describe
from tests.browser.test_portal import _tab_to
from tests.factories import SYSTEM, make_library, make_patron

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from pytest_django.live_server_helper import LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SECRET = "plum-orchard-41-lantern"
UTC = dt.UTC


def ny(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2027, month, day, hour, minute, tzinfo=ZONE)


@pytest.fixture
def frozen() -> Iterator[None]:
    with clock.frozen(NOW):
        yield


@pytest.fixture
def lending(frozen: None) -> SimpleNamespace:
    """Two centers; at the lab two laptops and three cameras, Alan's booking of Laptop One on 17 May, and a
    checkout of Laptop Two that Grace picked up and brought back in April. The lab approves portal bookings."""
    library = make_library("journey", name="Riverside Library")
    lab = make_center(library, "lab", name="Media Lab")
    make_center(library, "studio", name="Sound Studio")
    laptops = make_type(library, "Laptops", centers=[lab])
    cameras = make_type(library, "Cameras", centers=[lab])
    laptop = make_resource(library, laptops, lab, identifier="LAP-1", name="Laptop One")
    spare = make_resource(library, laptops, lab, identifier="LAP-2", name="Laptop Two")
    for n in (1, 2, 3):
        make_resource(library, cameras, lab, identifier=f"CAM-{n}", name=f"Camera {n}")
    grace = make_patron(library, person_id="P-8001", first_name="Grace", last_name="Hopper")
    credentials.set_password(grace, SECRET, actor=SYSTEM)
    alan = make_patron(library, person_id="P-8002", first_name="Alan", last_name="Turing")
    reservations.create_reservation(
        actor=SYSTEM, patron=alan, center=lab, starts_at=ny(5, 17, 9), ends_at=ny(5, 17, 13),
        lines=[{"resource": laptop.pk}],
    )  # fmt: skip
    with clock.frozen(ny(4, 19, 12)):
        april = reservations.create_reservation(
            actor=SYSTEM, patron=grace, center=lab, starts_at=ny(4, 20, 10), ends_at=ny(4, 20, 16),
            lines=[{"resource": spare.pk}],
        )  # fmt: skip
    with clock.frozen(ny(4, 20, 10)):
        out = desk.check_out(actor=SYSTEM, reservation=april, scanned=["LAP-2"])
    with clock.frozen(ny(4, 20, 15)):
        returned = desk.check_in(actor=SYSTEM, checkout=out)
    reservations.save_center_policy(actor=SYSTEM, center=lab, data={"approval_required": True})
    return SimpleNamespace(library=library, lab=lab, laptop=laptop, spare=spare, grace=grace, alan=alan,
                           april=april, returned=returned)  # fmt: skip


def _url(name: str, library: Any, **kwargs: Any) -> str:
    return reverse(f"portal:{name}", kwargs={"library": library.code, **kwargs})


def _arrive(page: Page, path: str) -> None:
    """Wait until the page is at ``path`` (any query string)."""
    page.wait_for_url(lambda url: urlsplit(url).path == path)


def _scan_refusal(page: Page, where: str, contrast: bool) -> list[str]:
    """Submit the review once more (a fresh form) and scan the refusal panel it shows."""
    page.locator("#submit button[type=submit]").click()
    page.wait_for_selector("#refusal")
    assert page.locator("html.high-contrast").count() == (1 if contrast else 0)
    return describe(f"{where} ({'high contrast' if contrast else 'normal'})", axe_violations(page))


def test_a_patron_books_edits_cancels_copies_reports_and_subscribes(
    lending: SimpleNamespace, page: Page, browser: Browser, live_server: LiveServer
) -> None:
    w = lending
    lib = w.library

    # --- sign in and pick a center, keyboard only -------------------------------------------------------
    page.goto(_url("sign-in", lib))
    _tab_to(page, "#f-identifier")
    page.keyboard.type("P-8001")
    _tab_to(page, "#f-password")
    page.keyboard.type(SECRET)
    page.keyboard.press("Enter")
    _arrive(page, _url("center", lib))
    assert page.locator("input[name=center]").count() == 2
    _tab_to(page, "input[name=center]")
    for _ in range(2):  # the arrow keys move through the two centers (and check the one reached)
        if page.evaluate("document.activeElement.labels[0].innerText") == "Media Lab":
            break
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    assert page.locator("input[name=center]:checked + label").inner_text() == "Media Lab"
    _tab_to(page, "form.stacked button[type=submit]")
    page.keyboard.press("Enter")
    _arrive(page, _url("dashboard", lib))
    assert page.locator(".menu-center strong").inner_text() == "Media Lab"
    assert "You have no upcoming reservations." in page.locator(".my-reservations").inner_text()

    # --- New Reservation: when and what, weekly on Mondays, three times ----------------------------------
    page.get_by_role("link", name="New Reservation").click()
    page.fill("#f-starts_on", "2027-05-10")
    page.fill("#f-starts_time", "10:00")
    page.fill("#f-ends_on", "2027-05-10")
    page.fill("#f-ends_time", "12:00")
    page.fill("#f-title", "Podcast club")
    page.select_option("#f-repeat", "weekly")
    page.check("#f-repeat_weekdays-mon")
    page.check("#f-repeat_end-count")
    page.fill("#f-repeat_count", "3")
    page.get_by_role("button", name="Save and add resources").click()
    assert "(saved)" in page.locator("nav[aria-label=Steps]").inner_text()

    # One specific resource, found by keyword, and one "of this type", browsed to.
    page.fill("#f-q", "laptop one")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name="Add Laptop One to cart").click()
    page.get_by_role("link", name="All resource types").click()
    page.get_by_role("link", name="Cameras", exact=True).click()
    assert "3 free for your time." in page.locator("#add-resources").inner_text()  # the first date's count
    page.get_by_role("button", name=re.compile(r"^Reserve one of this type\W+Cameras$")).click()
    cart = page.locator("table.cart tbody")
    assert cart.locator("tr").count() == 2
    assert "Laptop One" in cart.inner_text()
    assert "Cameras (one of this type)" in cart.inner_text()

    # --- Review & Submit: refused (Laptop One is Alan's on the 17th); the panel passes axe in both modes -
    page.get_by_role("link", name="Review & Submit").first.click()
    assert "will wait for approval" in page.locator("main").inner_text()
    problems = _scan_refusal(page, "review with the refusal panel", contrast=False)
    panel = page.locator("#refusal")
    assert panel.locator("[data-code=resource_booked]").count() >= 1
    assert "Nothing was booked." in panel.inner_text()
    assert Reservation.objects.filter(patron=w.grace).count() == 1  # April's only
    page.context.add_cookies([{"name": "portal_contrast", "value": "on", "url": live_server.url}])
    page.goto(_url("reservation-review", lib))
    problems += _scan_refusal(page, "review with the refusal panel", contrast=True)
    page.context.add_cookies([{"name": "portal_contrast", "value": "off", "url": live_server.url}])
    assert not problems, "\n".join(problems)

    # The panel offers the free laptop; take it, then submit.
    page.get_by_role("button", name="Take Laptop Two instead").click()
    _arrive(page, _url("reservation-review", lib))  # straight back to the review
    assert "Laptop Two" in page.locator("table.cart tbody").inner_text()
    assert "Laptop One" not in page.locator("table.cart tbody").inner_text()
    page.locator("#submit button[type=submit]").click()
    _arrive(page, _url("reservation-done", lib))
    assert page.locator("h1").inner_text() == "Reservation sent for approval"
    links = page.locator("main ul a[href*='/reservations/']")
    assert links.count() == 3
    occurrences = [str(link.get_attribute("href")) for link in links.all()]
    booked = list(Reservation.objects.filter(patron=w.grace, series__isnull=False).order_by("starts_at"))
    assert [r.starts_at for r in booked] == [ny(5, 10, 10), ny(5, 17, 10), ny(5, 24, 10)]
    assert {r.state for r in booked} == {"pending_approval"}
    assert {r.channel for r in booked} == {"portal"}
    assert occurrences == [_url("reservation", lib, reservation_id=r.pk) for r in booked]

    # --- the dashboard shows the series once, with its count ----------------------------------------------
    page.get_by_role("link", name="Back to the dashboard").click()
    entries = page.locator(".my-reservations li[data-reservation]")
    assert entries.count() == 1
    assert entries.first.get_attribute("data-reservation") == str(booked[0].pk)
    assert "3 occurrences ahead" in entries.first.inner_text()
    assert "staff have not approved it yet" in entries.first.inner_text()

    # --- open the first occurrence and edit it: an hour earlier, and Laptop One added (free on the 10th) ---
    entries.first.get_by_role("link").click()
    assert "Awaits approval" in page.locator(".facts").inner_text()
    page.get_by_role("link", name="Edit reservation").click()
    page.fill("#f-starts_at", "2027-05-10T09:00")
    page.select_option("#f-add_resource", label="Laptop One")
    page.get_by_role("button", name="Confirm changes").click()
    _arrive(page, occurrences[0])
    facts = page.locator(".facts").inner_text()
    assert "Monday 10 May 2027, 09:00" in facts
    assert "Laptop One" in facts
    assert "Changed: pickup time, resources (by you)" in page.locator(".events").inner_text()

    # --- cancel the second occurrence, after the confirmation ------------------------------------------
    page.goto(occurrences[1])
    page.get_by_role("link", name="Cancel reservation").click()
    assert "Cancel this reservation?" in page.locator("h1").inner_text()
    page.get_by_role("button", name="Yes, cancel it").click()
    _arrive(page, occurrences[1])
    assert "Cancelled" in page.locator(".facts").inner_text()
    page.goto(_url("dashboard", lib))
    assert "2 occurrences ahead" in page.locator(".my-reservations li[data-reservation]").first.inner_text()

    # --- copy April's completed checkout into a new reservation ----------------------------------------
    page.locator(".history").get_by_role("link", name="Laptop Two").click()
    page.get_by_role("link", name="Copy into a new reservation").click()
    page.fill("#f-starts_at", "2027-05-12T09:00")
    page.fill("#f-ends_at", "2027-05-12T11:00")
    page.get_by_role("button", name="Confirm new reservation").click()
    copy = Reservation.objects.get(patron=w.grace, series__isnull=True, starts_at__gt=NOW)
    _arrive(page, _url("reservation", lib, reservation_id=copy.pk))
    assert "Awaits approval" in page.locator(".facts").inner_text()
    assert (copy.starts_at, copy.ends_at, copy.state) == (ny(5, 12, 9), ny(5, 12, 11), "pending_approval")
    assert [line.resource_id for line in copy.lines.all()] == [w.spare.pk]

    # --- report a problem ----------------------------------------------------------------------------------
    page.goto(_url("dashboard", lib))
    page.get_by_role("link", name="Report a Problem").click()
    page.get_by_role("link", name="Report a new problem").click()
    page.fill("[name=summary]", "Camera strap is torn")
    page.fill("[name=description]", "The strap of the camera I had in April came loose on one side.")
    page.get_by_role("button", name="Send the report").click()
    ticket = Ticket.objects.get(reporter=w.grace)
    _arrive(page, _url("problem", lib, ticket_id=ticket.pk))
    assert (ticket.summary, ticket.center_id) == ("Camera strap is torn", w.lab.pk)
    assert page.locator("h1").inner_text() == f"Ticket {ticket.pk}: Camera strap is torn"
    page.get_by_role("link", name="Back to my reports").click()
    assert "Camera strap is torn" in page.locator("main").inner_text()

    # --- the calendar feed: fetched without the session, it holds every occurrence and the copy ----------
    page.goto(_url("dashboard", lib))
    page.get_by_role("link", name="Email Calendar").click()
    page.get_by_role("button", name="Make my calendar address").click()
    feed_url = page.input_value("#feed-url")
    assert feed_url.endswith(".ics")
    session = next(c for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    assert str(session["value"]) not in feed_url
    stranger = browser.new_context()  # no cookies: the token alone opens the feed
    try:
        response = stranger.request.get(feed_url)
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/calendar")
        body = response.body()
    finally:
        stranger.close()
    _check_feed(body, booked, copy)


def _check_feed(body: bytes, booked: list[Reservation], copy: Reservation) -> None:
    from icalendar import Calendar

    calendar = Calendar.from_ical(body)
    assert str(calendar["METHOD"]) == "PUBLISH"
    events = {str(e["UID"]): e for e in calendar.walk("VEVENT")}
    mine = [*booked, copy]
    uids = {r.pk: next((u for u in events if u.startswith(f"reservation-{r.pk}@")), None) for r in mine}
    assert None not in uids.values(), f"missing events: {uids} in {sorted(events)}"
    assert len(events) == 4  # three occurrences and the copy; April's completed one and Alan's are not there
    status = {r.pk: str(events[str(uids[r.pk])]["STATUS"]) for r in mine}
    first, second, third = booked
    assert status == {first.pk: "TENTATIVE", second.pk: "CANCELLED", third.pk: "TENTATIVE", copy.pk: "TENTATIVE"}
    edited = events[str(uids[first.pk])]
    assert edited.decoded("DTSTART") == ny(5, 10, 9).astimezone(UTC)
    assert int(str(edited["SEQUENCE"])) >= 1  # the edit raised it
    assert int(str(events[str(uids[third.pk])]["SEQUENCE"])) == 0
    assert events[str(uids[copy.pk])].decoded("DTEND") == ny(5, 12, 11).astimezone(UTC)
