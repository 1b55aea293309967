"""Repeating reservations through the REST API: booking a series across a daylight-saving change,
conflicts with substitutes, all-or-nothing, reading a series, cancelling this and the later occurrences,
field errors for a bad repeat, and another library's series."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from patronage.core import clock
from patronage.libraries.permissions import Permission
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation, ReservationSeries
from patronage.resources.tests.builders import make_lab
from tests.factories import SYSTEM, make_library, make_patron

from .test_api import api_for

pytestmark = pytest.mark.django_db

NY = ZoneInfo("America/New_York")  # make_library's time zone
# Monday 18 October 2027, noon in New York; the clocks go back on Sunday 7 November.
NOW = dt.datetime(2027, 10, 18, 12, 0, tzinfo=NY)
DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT]
SERIES = "/api/v1/reservation-series/"


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def lab() -> SimpleNamespace:
    lab = make_lab(make_library("lend", name="Lending library"))
    lab.api = api_for(lab.library, DESK, username="desk")
    return lab


def body(lab: SimpleNamespace, **extra: Any) -> dict[str, Any]:
    """The laptop on Monday 25 October, 10:00-12:00 on the center's wall clock, weekly for 4 weeks."""
    return {
        "patron": lab.patron.pk, "center": lab.center.pk, "starts_at": "2027-10-25T10:00",
        "ends_at": "2027-10-25T12:00", "lines": [{"resource": lab.laptop.pk}],
        "repeat": {"freq": "weekly", "weekdays": ["mon"], "count": 4}, **extra,
    }  # fmt: skip


def local(text: str) -> str:
    return f"{dt.datetime.fromisoformat(text).astimezone(NY):%Y-%m-%d %H:%M}"


def book_other(lab: SimpleNamespace, day: str) -> Reservation:
    return reservations.create_reservation(
        actor=SYSTEM, patron=make_patron(lab.library), center=lab.center, starts_at=f"{day}T11:00",
        ends_at=f"{day}T13:00", lines=[{"resource": lab.laptop.pk}],
    )  # fmt: skip


def test_a_weekly_series_lands_at_10_local_across_the_autumn_change(lab: SimpleNamespace) -> None:
    status, created, response = lab.api.call("post", SERIES, body(lab))
    assert status == 201, created
    assert response["Location"] == f"{SERIES}{created['series_id']}/"
    assert created["conflicts"] == []
    assert [local(r["starts_at"]) for r in created["booked"]] == [
        "2027-10-25 10:00", "2027-11-01 10:00", "2027-11-08 10:00", "2027-11-15 10:00",
    ]  # fmt: skip
    assert [dt.datetime.fromisoformat(r["starts_at"]).astimezone(dt.UTC).hour for r in created["booked"]] == [
        14, 14, 15, 15,
    ]  # fmt: skip
    assert {r["series_id"] for r in created["booked"]} == {created["series_id"]}
    assert {r["channel"] for r in created["booked"]} == {"api"}
    assert created["rule"] == "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;COUNT=4"

    status, series, _ = lab.api.call("get", f"{SERIES}{created['series_id']}/")
    assert status == 200
    assert [r["id"] for r in series["occurrences"]] == [r["id"] for r in created["booked"]]
    status, one, _ = lab.api.call("get", f"/api/v1/reservations/{created['booked'][0]['id']}/")
    assert one["series_id"] == created["series_id"]


def test_monthly_on_the_last_weekday_and_on_the_date(lab: SimpleNamespace) -> None:
    status, created, _ = lab.api.call(
        "post", SERIES, body(lab, repeat={"freq": "monthly", "monthly_by": "weekday", "ordinal": "last", "count": 3})
    )
    assert status == 201, created
    assert [local(r["starts_at"]) for r in created["booked"]] == [
        "2027-10-25 10:00", "2027-11-29 10:00", "2027-12-27 10:00",
    ]  # fmt: skip
    status, created, _ = lab.api.call(
        "post", SERIES,
        body(lab, starts_at="2027-10-31T10:00", ends_at="2027-10-31T11:00",
             repeat={"freq": "monthly", "monthly_by": "date", "count": 2}),
    )  # fmt: skip
    assert status == 201, created
    assert [local(r["starts_at"]) for r in created["booked"]] == ["2027-10-31 10:00", "2027-11-30 10:00"]


def test_a_conflict_is_reported_with_its_substitute_which_can_be_booked(lab: SimpleNamespace) -> None:
    book_other(lab, "2027-11-08")
    status, created, _ = lab.api.call("post", SERIES, body(lab))
    assert status == 201, created
    assert len(created["booked"]) == 3
    [conflict] = created["conflicts"]
    assert (conflict["occurrence"], local(conflict["starts_at"])) == (2, "2027-11-08 10:00")
    assert [r["code"] for r in conflict["reasons"]] == ["resource_booked"]
    assert conflict["substitutes"] == [{"line": 0, "resource": lab.spare.pk}]
    status, made, _ = lab.api.call(
        "post", "/api/v1/reservations/",
        {"patron": lab.patron.pk, "center": lab.center.pk, "starts_at": conflict["starts_at"],
         "ends_at": conflict["ends_at"], "lines": [{"resource": conflict["substitutes"][0]["resource"]}],
         "series": created["series_id"]},
    )  # fmt: skip
    assert status == 201, made
    assert (local(made["starts_at"]), made["lines"][0]["resource"]) == ("2027-11-08 10:00", lab.spare.pk)
    assert made["series_id"] == created["series_id"]
    _, series, _ = lab.api.call("get", f"{SERIES}{created['series_id']}/")
    assert made["id"] in [o["id"] for o in series["occurrences"]]


def test_all_or_nothing_books_nothing_and_answers_409_with_the_conflicts(lab: SimpleNamespace) -> None:
    book_other(lab, "2027-11-08")
    status, problem, response = lab.api.call("post", SERIES, body(lab, all_or_nothing=True))
    assert status == 409
    assert response["Content-Type"] == "application/problem+json"
    assert problem["code"] == "refused"
    [conflict] = problem["conflicts"]
    assert (conflict["occurrence"], local(conflict["starts_at"])) == (2, "2027-11-08 10:00")
    assert [r["code"] for r in conflict["reasons"]] == ["resource_booked"]
    assert conflict["substitutes"] == [{"line": 0, "resource": lab.spare.pk}]
    assert not ReservationSeries.objects.exists()
    assert not Reservation.objects.filter(patron=lab.patron).exists()


def test_cancel_series_cancels_this_and_later_and_leaves_earlier(lab: SimpleNamespace) -> None:
    _, created, _ = lab.api.call("post", SERIES, body(lab))
    ids = [r["id"] for r in created["booked"]]
    status, answer, _ = lab.api.call("post", f"/api/v1/reservations/{ids[2]}/cancel-series/", {"comment": "Term over"})
    assert status == 200, answer
    assert answer["cancelled"] == ids[2:]
    assert [r["state"] for r in answer["series"]["occurrences"]] == ["reserved", "reserved", "cancelled", "cancelled"]
    assert answer["series"]["occurrences"][3]["events"][-1]["comment"] == "Term over"
    single = reservations.create_reservation(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at="2027-12-01T10:00",
        ends_at="2027-12-01T11:00", lines=[{"resource": lab.spare.pk}],
    )  # fmt: skip
    status, problem, _ = lab.api.call("post", f"/api/v1/reservations/{single.pk}/cancel-series/", {})
    assert (status, problem["code"]) == (409, "not_in_series")


@pytest.mark.parametrize(
    ("repeat", "field", "message"),
    [
        ({"freq": "weekly", "count": 60}, "repeat.count", "at most 52 occurrences"),
        ({"freq": "weekly", "until": "2028-12-31"}, "repeat.until", "at most 180 days ahead"),
        ({"freq": "weekly", "count": 0}, "repeat.count", "Give at least 1 occurrence."),
        ({"freq": "weekly"}, "repeat.until", "Say when the series ends"),
        ({"freq": "weekly", "until": "2027-10-20"}, "repeat.until", "gives no dates"),
        ({"freq": "yearly", "count": 2}, "repeat.freq", "not a valid choice"),
        ({"freq": "weekly", "weekdays": ["someday"], "count": 2}, "repeat.weekdays", "Name weekdays as mon"),
        ({"freq": "monthly", "count": 2}, "repeat.monthly_by", 'on the "date" or on a "weekday"'),
        ({"freq": "monthly", "monthly_by": "weekday", "ordinal": "6", "count": 2}, "repeat.ordinal", "1st to 5th"),
        ({"freq": "monthly", "monthly_by": "weekday", "count": 2}, "repeat.ordinal", "either on a date"),
        ({"freq": "daily", "count": 2, "every": 2}, "repeat.every", "Unknown field"),
    ],
)
def test_a_bad_repeat_is_a_field_error_and_writes_nothing(
    lab: SimpleNamespace, repeat: dict[str, Any], field: str, message: str
) -> None:
    status, problem, response = lab.api.call("post", SERIES, body(lab, repeat=repeat))
    assert status == 400, problem
    assert response["Content-Type"] == "application/problem+json"
    assert message in " ".join(problem["errors"][field]), problem
    assert not ReservationSeries.objects.exists()
    assert not Reservation.objects.exists()


def test_another_librarys_series_is_404(lab: SimpleNamespace) -> None:
    _, created, _ = lab.api.call("post", SERIES, body(lab))
    outsider = api_for(make_library("far"), list(Permission), username="far")
    status, problem, _ = outsider.call("get", f"{SERIES}{created['series_id']}/")
    assert (status, problem["code"]) == (404, "not_found")
    first = created["booked"][0]["id"]
    assert outsider.call("post", f"/api/v1/reservations/{first}/cancel-series/", {})[0] == 404
    status, _, _ = outsider.call("post", SERIES, body(lab))
    assert status == 404
    assert set(Reservation.objects.values_list("state", flat=True)) == {"reserved"}
    assert ReservationSeries.objects.count() == 1
