"""Repeating reservations on the staff pages: the Repeats fieldset, the series page with its conflicts and
substitutes, all-or-nothing, "cancel this and later", field errors and another library's series."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.urls import reverse

from patronage.core import clock
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation, ReservationSeries
from tests.factories import SYSTEM, make_patron

from .conftest import StaffClient

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")  # make_library's time zone
# Monday 18 October 2027, noon in New York; the clocks go back on Sunday 7 November.
NOW = dt.datetime(2027, 10, 18, 12, 0, tzinfo=NY)
DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT]


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"staff:lending:{name}", kwargs=kwargs)


def local(instant: dt.datetime) -> str:
    return f"{instant.astimezone(NY):%Y-%m-%d %H:%M}"


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):
        yield NOW


def form(lab: SimpleNamespace, **repeat: Any) -> dict[str, Any]:
    """The new-reservation form: the laptop on Monday 25 October, 10:00-12:00 local, and a repeat."""
    return {
        "patron": str(lab.patron.pk), "center": str(lab.center.pk), "starts_at": "2027-10-25T10:00",
        "ends_at": "2027-10-25T12:00", "pickup_option": "desk", "lines.0.resource": str(lab.laptop.pk),
        **{k if k == "all_or_nothing" else f"repeat.{k}": v for k, v in repeat.items()},
    }  # fmt: skip


def book_other(lab: SimpleNamespace, day: str) -> Reservation:
    """Another patron takes the laptop from 11:00 to 13:00 on ``day``."""
    return reservations.create_reservation(
        actor=SYSTEM, patron=make_patron(lab.library), center=lab.center, starts_at=f"{day}T11:00",
        ends_at=f"{day}T13:00", lines=[{"resource": lab.laptop.pk}],
    )  # fmt: skip


def test_the_form_has_a_repeats_fieldset_with_the_centers_caps(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    reservations.save_center_policy(
        actor=SYSTEM, center=lab.center, data={"series_max_occurrences": "12", "series_horizon_days": "90"}
    )
    page = staff_client(DESK).get(url("reservation-new"), {"center": lab.center.pk}).content.decode()
    assert "<legend>Repeats</legend>" in page
    assert "Media lab: at most 12 occurrences, none starting more than 90 days ahead." in page
    assert '<label for="f-repeat.weekdays-mon">Monday</label>' in page
    assert '<label for="f-all_or_nothing">Book none if any occurrence conflicts</label>' in page


def test_a_weekly_series_lands_at_10_local_across_the_autumn_change(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    client = staff_client(DESK)
    response = client.post(url("reservation-new"), form(lab, frequency="weekly", weekdays="mon", count="4"))
    series = ReservationSeries.objects.get()
    assert response.status_code == 302
    assert response["Location"] == url("series", series_id=series.pk)
    made = list(series.occurrences.order_by("starts_at"))
    assert [local(r.starts_at) for r in made] == [
        "2027-10-25 10:00", "2027-11-01 10:00", "2027-11-08 10:00", "2027-11-15 10:00",
    ]  # fmt: skip
    # The UTC instant moves by the hour the clocks went back; the wall clock does not.
    assert [r.starts_at.astimezone(dt.UTC).hour for r in made] == [14, 14, 15, 15]
    page = client.get(response["Location"]).content.decode()
    assert "Mon 2027-11-08 10:00" in page
    assert page.count("Cancel this and later occurrences") == 4
    detail = client.get(url("reservation", reservation_id=made[1].pk)).content.decode()
    assert f'href="{url("series", series_id=series.pk)}">Part of a series</a>' in detail


def test_a_conflicting_occurrence_is_listed_with_its_substitute_and_booked_with_it(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    other = book_other(lab, "2027-11-01")
    client = staff_client(DESK)
    response = client.post(url("reservation-new"), form(lab, frequency="weekly", count="3", interval="1"))
    series = ReservationSeries.objects.get()
    assert [local(r.starts_at) for r in series.occurrences.all()] == ["2027-10-25 10:00", "2027-11-08 10:00"]
    page = client.get(response["Location"]).content.decode()
    assert "Not booked: 1 conflicting occurrence(s)" in page
    assert "Mon 2027-11-01 10:00" in page
    assert "resource_booked" in page
    assert "Book Mon 2027-11-01 10:00 with Laptop two (LAP-2)</button>" in page

    booked = client.post(url("series-substitute", series_id=series.pk), {"occurrence": "1"})
    assert booked.status_code == 302
    made = Reservation.objects.filter(patron=lab.patron, starts_at=dt.datetime(2027, 11, 1, 10, tzinfo=NY)).get()
    assert [line.resource_id for line in made.lines.all()] == [lab.spare.pk]
    assert (made.state, other.state) == ("reserved", "reserved")
    # It joins the series: listed with the other occurrences and cancelled with them.
    assert made.series_id == series.pk
    assert "2027-11-01 10:00" in client.get(url("series", series_id=series.pk)).content.decode()
    # Booked once: the conflict leaves the page and a second press books nothing more.
    assert "Not booked" not in client.get(response["Location"]).content.decode()
    client.post(url("series-substitute", series_id=series.pk), {"occurrence": "1"})
    assert Reservation.objects.filter(patron=lab.patron).count() == 3


def test_all_or_nothing_books_nothing_and_lists_the_conflicts(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    book_other(lab, "2027-11-08")
    response = staff_client(DESK).post(
        url("reservation-new"), form(lab, frequency="weekly", count="3", all_or_nothing="1")
    )
    assert response.status_code == 409
    page = response.content.decode()
    assert "Nothing was booked." in page
    assert "Mon 2027-11-08 10:00" in page
    assert "resource_booked" in page
    assert "Free instead: line 1, Laptop two" in page
    assert not ReservationSeries.objects.exists()
    assert not Reservation.objects.filter(patron=lab.patron).exists()


def test_cancel_this_and_later_keeps_the_earlier_occurrences(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    made = reservations.create_series(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at="2027-10-25T10:00", ends_at="2027-10-25T12:00",
        repeat={"frequency": "weekly", "count": 4}, lines=[{"resource": lab.laptop.pk}],
    )  # fmt: skip
    first, second, third, fourth = made.booked
    client = staff_client(DESK)
    confirm = client.get(url("reservation-cancel-series", reservation_id=second.pk)).content.decode()
    assert "These 3 occurrence(s) will be cancelled" in confirm
    assert "Mon 2027-11-01 10:00" in confirm
    assert "Mon 2027-10-25" not in confirm
    response = client.post(url("reservation-cancel-series", reservation_id=second.pk), {"comment": "Course ended"})
    assert response["Location"] == url("series", series_id=made.series.pk)
    states = dict(Reservation.objects.values_list("pk", "state"))
    assert [states[r.pk] for r in (first, second, third, fourth)] == ["reserved", "cancelled", "cancelled", "cancelled"]
    assert fourth.events.last().comment == "Course ended"  # type: ignore[union-attr]
    page = client.get(response["Location"]).content.decode()
    assert page.count("Cancel this and later occurrences") == 1


@pytest.mark.parametrize(
    ("repeat", "field", "message"),
    [
        ({"frequency": "weekly", "count": "0"}, "repeat.count", "Give at least 1 occurrence."),
        ({"frequency": "daily", "count": "60"}, "repeat.count", "at most 52 occurrences"),
        ({"frequency": "weekly", "until": "2028-12-31"}, "repeat.until", "at most 180 days ahead"),
        ({"frequency": "weekly"}, "repeat.until", "Say when the series ends"),
        ({"frequency": "weekly", "until": "2027-10-20"}, "repeat.until", "gives no dates"),
        ({"frequency": "daily", "count": "3", "interval": "every"}, "repeat.interval", "whole number"),
        ({"frequency": "monthly_weekday", "count": "3"}, "repeat.week_of_month", "either on a date"),
    ],
)
def test_bad_repeat_input_is_shown_next_to_its_field_and_writes_nothing(
    staff_client: StaffClient, lab: SimpleNamespace, repeat: dict[str, str], field: str, message: str
) -> None:
    response = staff_client(DESK).post(url("reservation-new"), form(lab, **repeat))
    assert response.status_code == 400
    page = response.content.decode()
    assert f'<a href="#f-{field}">' in page
    assert f'id="f-{field}-error"' in page
    assert message in page
    assert not ReservationSeries.objects.exists()
    assert not Reservation.objects.exists()


def test_another_librarys_series_is_not_found(
    staff_client: StaffClient, lab: SimpleNamespace, other_library: Library
) -> None:
    made = reservations.create_series(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at="2027-10-25T10:00", ends_at="2027-10-25T12:00",
        repeat={"frequency": "weekly", "count": 2}, lines=[{"resource": lab.laptop.pk}],
    )  # fmt: skip
    outsider = staff_client(at=other_library)
    assert outsider.get(url("series", series_id=made.series.pk)).status_code == 404
    assert outsider.post(url("series-substitute", series_id=made.series.pk), {"occurrence": "0"}).status_code == 404
    first = made.booked[0]
    assert outsider.get(url("reservation-cancel-series", reservation_id=first.pk)).status_code == 404
    assert outsider.post(url("reservation-cancel-series", reservation_id=first.pk)).status_code == 404
    assert set(Reservation.objects.values_list("state", flat=True)) == {"reserved"}
