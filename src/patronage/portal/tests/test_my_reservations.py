"""The patron's own reservations and checkouts in the portal: view, edit, cancel, copy, and My Data."""

from __future__ import annotations

import io
import json
import re
import zipfile
from typing import Any

import pytest

from patronage.circulation import services as desk
from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.core.models import AuditEvent
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import NOW, at, make_resource, make_type
from tests.factories import SYSTEM

from . import world as w
from .conftest import SECRET

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def long_sessions(settings: Any) -> None:
    # The tests move the clock by days; the idle sign-out is tested in test_portal.
    settings.PATRONAGE_PORTAL_IDLE_MINUTES = 60 * 24 * 365


@pytest.fixture
def lab() -> Any:
    with clock.frozen(NOW):
        yield w.build()


def state(reservation: Reservation) -> str:
    return Reservation.objects.get(pk=reservation.pk).state


def completed_checkout(lab: Any) -> Checkout:
    """Grace borrowed Laptop One on the 4th and brought it back."""
    made = w.book(lab, at(4, 10), at(4, 12))
    with clock.frozen(at(4, 10)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
    with clock.frozen(at(4, 11)):
        return desk.check_in(actor=SYSTEM, checkout=checkout)


# --- another patron's things are never found -----------------------------------------------------------


def test_another_patrons_reservation_checkout_and_series_answer_404_on_every_page_and_action(lab: Any) -> None:
    with clock.frozen(NOW):
        mine = w.book(lab, at(10, 10), at(10, 12))
        series = reservations.create_series(
            actor=SYSTEM, patron=lab.grace, center=lab.center, starts_at=at(11, 10), ends_at=at(11, 12),
            repeat={"frequency": "weekly", "count": 3}, lines=[{"resource": lab.spare.pk}],
        ).booked[0]  # fmt: skip
    checkout = completed_checkout(lab)
    with clock.frozen(NOW):
        alan = w.client_for("P-2")
        pages = [
            f"/portal/north/reservations/{mine.pk}/",
            f"/portal/north/reservations/{mine.pk}/edit/",
            f"/portal/north/reservations/{mine.pk}/cancel/",
            f"/portal/north/reservations/{series.pk}/cancel-rest/",
            f"/portal/north/checkouts/{checkout.pk}/",
            f"/portal/north/checkouts/{checkout.pk}/copy/",
        ]
        for url in pages:
            assert alan.get(url).status_code == 404, url
            if url.endswith(("edit/", "cancel/", "cancel-rest/", "copy/")):
                posted = {"starts_at": "2027-05-20T10:00", "ends_at": "2027-05-20T12:00"}
                assert alan.post(url, posted).status_code == 404, url
        assert alan.get("/portal/north/reservations/999999/").status_code == 404
    assert state(mine) == state(series) == "reserved"
    assert Reservation.objects.filter(patron=lab.alan).count() == 0


def test_pages_need_a_signed_in_patron(lab: Any) -> None:
    with clock.frozen(NOW):
        mine = w.book(lab, at(10, 10), at(10, 12))
        from django.test import Client

        response = Client().get(f"/portal/north/reservations/{mine.pk}/")
    assert response.status_code == 302
    assert response["Location"] == "/portal/north/sign-in/"


# --- the reservation page ---------------------------------------------------------------------------------


def test_reservation_page_shows_times_in_the_centers_zone_lines_and_history_in_plain_words(lab: Any) -> None:
    with clock.frozen(NOW):
        made = w.book(lab, at(10, 10), at(10, 12), [{"resource": lab.laptop.pk}, {"resource_type": lab.laptops.pk}])
        grace = w.client_for("P-1")
        page = grace.get(f"/portal/north/reservations/{made.pk}/").content.decode()
    assert "Monday 10 May 2027, 10:00" in page  # New York time, not UTC (14:00)
    assert "Media Lab" in page
    assert "Laptop One" in page
    assert "Any one of Laptops" in page
    assert "Reserved (automatically)" in page  # booked by the system actor
    assert "At the desk" in page
    assert "Cancel reservation" in page
    # Made by staff and approved: it can only be cancelled, and the page says why.
    assert "Edit reservation" not in page
    assert "can be cancelled, not changed" in page


def test_pending_reservation_is_edited_times_and_resources(lab: Any) -> None:
    with clock.frozen(NOW):
        reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"approval_required": True})
        made = w.book(lab, at(10, 10), at(10, 12), channel="portal", actor=w_portal(lab))
        assert made.state == "pending_approval"
        grace = w.client_for("P-1")
        page = grace.get(f"/portal/north/reservations/{made.pk}/").content.decode()
        assert "Awaits approval" in page
        assert "Edit reservation" in page
        form = grace.get(f"/portal/north/reservations/{made.pk}/edit/").content.decode()
        assert 'value="2027-05-10T10:00"' in form
        line = made.lines.get()
        response = grace.post(
            f"/portal/north/reservations/{made.pk}/edit/",
            {"starts_at": "2027-05-10T11:00", "ends_at": "2027-05-10T13:00", f"remove_{line.pk}": "1",
             "add_resource": str(lab.spare.pk)},
        )  # fmt: skip
        assert response.status_code == 302
        made.refresh_from_db()
        assert (made.starts_at, made.ends_at) == (at(10, 11), at(10, 13))
        assert [ln.resource_id for ln in made.lines.all()] == [lab.spare.pk]
        page = grace.get(f"/portal/north/reservations/{made.pk}/").content.decode()
    assert "Changed: pickup time, return time, resources (by you)" in page


def w_portal(lab: Any) -> Any:
    from patronage.core import audit

    return audit.Actor.patron(lab.grace.pk)


def test_an_edit_inside_the_lead_time_is_refused_with_the_domains_reason(lab: Any) -> None:
    with clock.frozen(NOW):
        reservations.save_center_policy(
            actor=SYSTEM, center=lab.center, data={"approval_required": True, "min_lead_minutes": 24 * 60}
        )
        made = w.book(lab, at(5, 10), at(5, 12), channel="portal", actor=w_portal(lab))
    with clock.frozen(at(4, 12)):
        grace = w.client_for("P-1")
        response = grace.post(
            f"/portal/north/reservations/{made.pk}/edit/",
            {"starts_at": "2027-05-05T11:00", "ends_at": "2027-05-05T12:00"},
        )
    assert response.status_code == 409
    page = response.content.decode()
    assert 'role="alert"' in page
    assert 'data-code="inside_lead_time"' in page
    made.refresh_from_db()
    assert made.starts_at == at(5, 10)


def test_an_approved_reservation_cannot_be_edited_only_cancelled(lab: Any) -> None:
    with clock.frozen(NOW):
        reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"approval_required": True})
        made = w.book(lab, at(10, 10), at(10, 12), channel="portal", actor=w_portal(lab))
        reservations.approve_reservation(actor=SYSTEM, reservation=made)
        grace = w.client_for("P-1")
        page = grace.get(f"/portal/north/reservations/{made.pk}/").content.decode()
        assert "Edit reservation" not in page
        assert "An approved reservation can be cancelled, not changed" in page
        form = grace.get(f"/portal/north/reservations/{made.pk}/edit/").content.decode()
        assert 'data-code="not_editable"' in form
        response = grace.post(
            f"/portal/north/reservations/{made.pk}/edit/",
            {"starts_at": "2027-05-10T11:00", "ends_at": "2027-05-10T12:00"},
        )
    assert response.status_code == 409
    assert 'data-code="not_editable"' in response.content.decode()
    made.refresh_from_db()
    assert made.starts_at == at(10, 10)


def test_bad_times_and_an_empty_reservation_get_field_messages_and_change_nothing(lab: Any) -> None:
    with clock.frozen(NOW):
        reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"approval_required": True})
        made = w.book(lab, at(10, 10), at(10, 12), channel="portal", actor=w_portal(lab))
        grace = w.client_for("P-1")
        url = f"/portal/north/reservations/{made.pk}/edit/"
        response = grace.post(url, {"starts_at": "tomorrow", "ends_at": "2027-05-10T12:00"})
        assert response.status_code == 400
        page = response.content.decode()
        assert 'href="#f-starts_at"' in page
        assert 'aria-invalid="true"' in page
        line = made.lines.get()
        response = grace.post(
            url, {"starts_at": "2027-05-10T10:00", "ends_at": "2027-05-10T12:00", f"remove_{line.pk}": "1"}
        )
    assert response.status_code == 400
    assert 'href="#f-lines"' in response.content.decode()
    assert made.lines.get().resource_id == lab.laptop.pk


def test_cancel_asks_first_then_cancels(lab: Any) -> None:
    with clock.frozen(NOW):
        made = w.book(lab, at(10, 10), at(10, 12))
        grace = w.client_for("P-1")
        confirm = grace.get(f"/portal/north/reservations/{made.pk}/cancel/")
        assert confirm.status_code == 200
        assert "Cancel this reservation?" in confirm.content.decode()
        assert state(made) == "reserved"
        response = grace.post(f"/portal/north/reservations/{made.pk}/cancel/")
        assert response["Location"] == f"/portal/north/reservations/{made.pk}/"
        page = grace.get(response["Location"]).content.decode()
    assert state(made) == "cancelled"
    assert "Your reservation is cancelled." in page
    assert "Cancelled (by you)" in page
    event = AuditEvent.objects.get(action="reservation.cancel")
    assert (event.channel, event.actor_label, event.patron_id) == ("portal", f"patron {lab.grace.pk}", lab.grace.pk)


def test_cancel_one_occurrence_and_then_the_rest_of_a_series(lab: Any) -> None:
    with clock.frozen(NOW):
        result = reservations.create_series(
            actor=SYSTEM, patron=lab.grace, center=lab.center, starts_at=at(4, 10), ends_at=at(4, 12),
            repeat={"frequency": "weekly", "count": 4}, lines=[{"resource": lab.laptop.pk}],
        )  # fmt: skip
        first, second, third, fourth = result.booked
        grace = w.client_for("P-1")
        page = grace.get(f"/portal/north/reservations/{second.pk}/").content.decode()
        assert "Cancel this and later occurrences" in page
        assert grace.post(f"/portal/north/reservations/{second.pk}/cancel/").status_code == 302
        confirm = grace.get(f"/portal/north/reservations/{third.pk}/cancel-rest/").content.decode()
        assert "Tue 18 May 2027, 10:00" in confirm
        assert "Tue 25 May 2027, 10:00" in confirm
        assert grace.post(f"/portal/north/reservations/{third.pk}/cancel-rest/").status_code == 302
    assert [state(r) for r in (first, second, third, fourth)] == ["reserved", "cancelled", "cancelled", "cancelled"]


def test_a_series_occurrence_says_how_many_open_occurrences_come_after_it(lab: Any) -> None:
    with clock.frozen(NOW):
        first, second, third, _fourth = reservations.create_series(
            actor=SYSTEM, patron=lab.grace, center=lab.center, starts_at=at(4, 10), ends_at=at(4, 12),
            repeat={"frequency": "weekly", "count": 4}, lines=[{"resource": lab.laptop.pk}],
        ).booked  # fmt: skip
        grace = w.client_for("P-1")
        assert (
            "3 later occurrences still ahead" in grace.get(f"/portal/north/reservations/{first.pk}/").content.decode()
        )
        reservations.cancel_reservation(actor=SYSTEM, reservation=third)
        assert (
            "2 later occurrences still ahead" in grace.get(f"/portal/north/reservations/{first.pk}/").content.decode()
        )
        assert (
            "1 later occurrence still ahead" in grace.get(f"/portal/north/reservations/{second.pk}/").content.decode()
        )
        single = grace.get(f"/portal/north/reservations/{w.book(lab, at(20, 10), at(20, 12)).pk}/").content.decode()
    assert "Repeats" not in single


def test_a_picked_up_reservation_links_to_what_was_picked_up(lab: Any) -> None:
    checkout = completed_checkout(lab)
    with clock.frozen(NOW):
        grace = w.client_for("P-1")
        picked = grace.get(f"/portal/north/reservations/{checkout.reservation_id}/").content.decode()
        waiting = grace.get(f"/portal/north/reservations/{w.book(lab, at(20, 10), at(20, 12)).pk}/").content.decode()
    assert f'<a href="/portal/north/checkouts/{checkout.pk}/">What you picked up</a>' in picked
    assert "What you picked up" not in waiting


def test_cancel_rest_of_a_reservation_that_does_not_repeat_is_not_found(lab: Any) -> None:
    with clock.frozen(NOW):
        made = w.book(lab, at(10, 10), at(10, 12))
        grace = w.client_for("P-1")
        assert grace.get(f"/portal/north/reservations/{made.pk}/cancel-rest/").status_code == 404
        assert grace.post(f"/portal/north/reservations/{made.pk}/cancel-rest/").status_code == 404
    assert state(made) == "reserved"


def test_a_started_series_occurrence_cannot_be_cancelled(lab: Any) -> None:
    with clock.frozen(NOW):
        first = reservations.create_series(
            actor=SYSTEM, patron=lab.grace, center=lab.center, starts_at=at(4, 10), ends_at=at(4, 12),
            repeat={"frequency": "weekly", "count": 2}, lines=[{"resource": lab.laptop.pk}],
        ).booked[0]  # fmt: skip
    with clock.frozen(at(4, 10, 30)):
        grace = w.client_for("P-1")
        assert "Cancel reservation" not in grace.get(f"/portal/north/reservations/{first.pk}/").content.decode()
        response = grace.post(f"/portal/north/reservations/{first.pk}/cancel/")
    assert response.status_code == 409
    assert "has started" in response.content.decode()
    assert state(first) == "reserved"


# --- checkouts and copy --------------------------------------------------------------------------------


def test_checkout_page_and_copy_into_a_new_reservation(lab: Any) -> None:
    checkout = completed_checkout(lab)
    with clock.frozen(NOW):
        grace = w.client_for("P-1")
        page = grace.get(f"/portal/north/checkouts/{checkout.pk}/").content.decode()
        assert "Laptop One" in page
        assert "Completed" in page
        assert "Copy into a new reservation" in page
        response = grace.post(
            f"/portal/north/checkouts/{checkout.pk}/copy/",
            {"starts_at": "2027-05-12T09:00", "ends_at": "2027-05-12T11:00"},
        )
        assert response.status_code == 302
        made = Reservation.objects.exclude(pk=checkout.reservation_id).get()
        assert response["Location"] == f"/portal/north/reservations/{made.pk}/"
    assert (made.patron_id, made.channel, made.starts_at, made.state) == (lab.grace.pk, "portal", at(12, 9), "reserved")
    assert [ln.resource_id for ln in made.lines.all()] == [lab.laptop.pk]
    assert made.operator_label == f"patron {lab.grace.pk}"


def test_copy_refused_shows_every_reason_and_books_nothing(lab: Any) -> None:
    checkout = completed_checkout(lab)
    with clock.frozen(NOW):
        w.book(lab, at(12, 8), at(12, 12), patron=lab.alan)  # Alan has Laptop One then
        grace = w.client_for("P-1")
        response = grace.post(
            f"/portal/north/checkouts/{checkout.pk}/copy/",
            {"starts_at": "2027-05-12T09:00", "ends_at": "2027-05-12T11:00"},
        )
        missing = grace.post(f"/portal/north/checkouts/{checkout.pk}/copy/", {"starts_at": "", "ends_at": ""})
    assert response.status_code == 409
    assert 'data-code="resource_booked"' in response.content.decode()
    assert missing.status_code == 400
    assert 'href="#f-starts_at"' in missing.content.decode()
    assert Reservation.objects.filter(patron=lab.grace).count() == 1


def test_a_checkout_still_out_cannot_be_copied_and_late_is_said_in_words(lab: Any) -> None:
    made = w.book(lab, at(4, 10), at(4, 12))
    with clock.frozen(at(4, 10)):
        checkout = desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])
    with clock.frozen(at(4, 13)):
        grace = w.client_for("P-1")
        page = grace.get(f"/portal/north/checkouts/{checkout.pk}/").content.decode()
        response = grace.post(
            f"/portal/north/checkouts/{checkout.pk}/copy/",
            {"starts_at": "2027-05-12T09:00", "ends_at": "2027-05-12T11:00"},
        )
    assert "Copy into a new reservation" not in page
    assert "late</strong>: please return it" in page
    assert response.status_code == 409
    assert 'data-code="checkout_not_completed"' in response.content.decode()


# --- My Data -------------------------------------------------------------------------------------------


def test_my_data_downloads_the_patrons_own_export_and_is_audited_as_theirs(lab: Any) -> None:
    with clock.frozen(NOW):
        w.book(lab, at(10, 10), at(10, 12))
        grace = w.client_for("P-1")
        page = grace.get("/portal/north/my-data/").content.decode()
        assert "Download my data" in page
        assert "csrfmiddlewaretoken" in page
        response = grace.post("/portal/north/my-data/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="patron-north-{lab.grace.pk}.zip"'
    assert response["Cache-Control"] == "no-store"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        data = json.loads(archive.read("patron.json"))
        summary = archive.read("summary.txt").decode()
    assert "Hopper" in json.dumps(data)
    assert "Turing" not in json.dumps(data)
    assert "Hopper" in summary
    event = AuditEvent.objects.get(action="patron.exported")
    assert (event.patron_id, event.channel, event.actor_id, event.actor_label) == (
        lab.grace.pk, "portal", None, f"patron {lab.grace.pk}",
    )  # fmt: skip


def test_my_data_needs_a_post_with_csrf(lab: Any) -> None:
    from django.test import Client

    with clock.frozen(NOW):
        strict = Client(enforce_csrf_checks=True)
        strict.post("/portal/north/sign-in/", {"identifier": "P-1", "password": SECRET})
        response = strict.post("/portal/north/my-data/")
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="patron.exported").exists()


def test_every_form_on_these_pages_carries_a_csrf_token_and_labels(lab: Any) -> None:
    checkout = completed_checkout(lab)
    with clock.frozen(NOW):
        reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"approval_required": True})
        made = w.book(lab, at(10, 10), at(10, 12), channel="portal", actor=w_portal(lab))
        grace = w.client_for("P-1")
        for url in (
            f"/portal/north/reservations/{made.pk}/edit/",
            f"/portal/north/reservations/{made.pk}/cancel/",
            f"/portal/north/checkouts/{checkout.pk}/copy/",
            "/portal/north/my-data/",
        ):
            page = grace.get(url).content.decode()
            assert page.count("csrfmiddlewaretoken") >= 2, url  # the page's form and the session menu's
            inputs = re.findall(r'<(?:input|select)(?![^>]*type="hidden")[^>]*\bid="([^"]+)"', page)
            assert inputs or url.endswith(("cancel/", "my-data/")), url
            for name in inputs:
                assert f'for="{name}"' in page, (url, name)


def test_the_edit_form_offers_only_what_the_portal_shows_and_a_forged_choice_is_refused(lab: Any) -> None:
    with clock.frozen(NOW):
        drones = make_type(lab.library, "Drones", centers=[lab.center], visible_in_portal=False)
        drone = make_resource(lab.library, drones, lab.center, identifier="DR-1", name="Secret Drone")
        reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"approval_required": True})
        made = w.book(lab, at(10, 10), at(10, 12), channel="portal", actor=w_portal(lab))
        grace = w.client_for("P-1")
        url = f"/portal/north/reservations/{made.pk}/edit/"
        form = grace.get(url).content.decode()
        assert "Laptop Two" in form
        assert "Secret Drone" not in form
        assert "Drones" not in form
        response = grace.post(
            url, {"starts_at": "2027-05-10T10:00", "ends_at": "2027-05-10T12:00", "add_resource": str(drone.pk)}
        )
    assert response.status_code == 409
    assert 'data-code="resource_hidden"' in response.content.decode()
    assert [ln.resource_id for ln in made.lines.all()] == [lab.laptop.pk]
