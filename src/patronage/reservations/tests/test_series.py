"""Repeating reservations: expansion on the wall clock (DST, month ends, "last Friday"), caps, the quota
over the whole series, per-occurrence conflicts with substitutes, all-or-nothing, and cancelling the rest."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from patronage.core import clock
from patronage.core.errors import Conflict, FieldError, Refused, ValidationFailed
from patronage.reservations import rules
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy, Reservation, ReservationSeries
from patronage.reservations.rules import Frequency, Repeat
from patronage.resources import services as catalog
from patronage.resources.tests.builders import NOW, at, make_center, make_resource, make_type
from tests.factories import SYSTEM, make_library, make_patron

from .conftest import book

NY = "America/New_York"
LONDON = "Europe/London"


def local(spans, zone: str) -> list[str]:
    return [f"{s.astimezone(ZoneInfo(zone)):%Y-%m-%d %a %H:%M %z}" for s, _ in spans]


# --- expansion, no database ----------------------------------------------------------------------------


def test_weekly_keeps_the_wall_clock_across_both_changes_in_new_york() -> None:
    repeat = Repeat(Frequency.WEEKLY, weekdays=("mon",), until=dt.date(2028, 3, 20))
    spans = rules.expand(repeat, dt.datetime(2027, 10, 25, 10), dt.timedelta(hours=2), NY, limit=100)  # noqa: DTZ001
    shown = local(spans, NY)
    assert all(" 10:00 " in s for s in shown)
    assert shown[0] == "2027-10-25 Mon 10:00 -0400"
    assert shown[2] == "2027-11-08 Mon 10:00 -0500"  # after the autumn change (7 Nov)
    assert shown[-1] == "2028-03-20 Mon 10:00 -0400"  # after the spring change (12 Mar)
    assert all(end - start == dt.timedelta(hours=2) for start, end in spans)


def test_weekly_1900_in_london_across_the_october_and_march_changes() -> None:
    repeat = Repeat(Frequency.WEEKLY, weekdays=("thu",), count=30)
    spans = rules.expand(repeat, dt.datetime(2027, 10, 21, 19), dt.timedelta(hours=1), LONDON, limit=100)  # noqa: DTZ001
    utc = [s.astimezone(dt.UTC).hour for s, _ in spans]
    assert local(spans, LONDON)[0] == "2027-10-21 Thu 19:00 +0100"
    assert all(" 19:00 " in s for s in local(spans, LONDON))
    assert (utc[1], utc[2], utc[-1]) == (18, 19, 18)  # BST, GMT (from 31 Oct), BST (from 26 Mar)


def test_a_start_skipped_in_spring_moves_forward_and_a_repeated_one_takes_the_first() -> None:
    daily = Repeat(Frequency.DAILY, count=3)
    spring = rules.expand(daily, dt.datetime(2027, 3, 13, 2, 30), dt.timedelta(hours=1), NY, limit=10)  # noqa: DTZ001
    assert local(spring, NY) == [
        "2027-03-13 Sat 02:30 -0500", "2027-03-14 Sun 03:30 -0400", "2027-03-15 Mon 02:30 -0400",
    ]  # fmt: skip
    autumn = rules.expand(daily, dt.datetime(2027, 11, 6, 1, 30), dt.timedelta(minutes=30), NY, limit=10)  # noqa: DTZ001
    assert local(autumn, NY)[1] == "2027-11-07 Sun 01:30 -0400"  # the first 01:30 (daylight time)


def test_monthly_on_the_31st_falls_on_the_last_day_of_shorter_months() -> None:
    repeat = Repeat(Frequency.MONTHLY, month_day=31, count=5)
    spans = rules.expand(repeat, dt.datetime(2027, 12, 31, 9), dt.timedelta(hours=1), NY, limit=10)  # noqa: DTZ001
    assert [s[:10] for s in local(spans, NY)] == ["2027-12-31", "2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]
    last = Repeat(Frequency.MONTHLY, month_day=rules.LAST, count=3)
    spans = rules.expand(last, dt.datetime(2027, 4, 30, 9), dt.timedelta(hours=1), NY, limit=10)  # noqa: DTZ001
    assert [s[:10] for s in local(spans, NY)] == ["2027-04-30", "2027-05-31", "2027-06-30"]


def test_last_friday_and_fifth_friday_are_different_rules() -> None:
    start = dt.datetime(2027, 5, 1, 14)  # noqa: DTZ001
    last = Repeat(Frequency.MONTHLY, weekdays=("fri",), week_of_month=rules.LAST, count=3)
    fifth = Repeat(Frequency.MONTHLY, weekdays=("fri",), week_of_month=5, count=3)
    assert [s[:10] for s in local(rules.expand(last, start, dt.timedelta(hours=1), NY, limit=9), NY)] == [
        "2027-05-28", "2027-06-25", "2027-07-30",
    ]  # fmt: skip
    # Months without a fifth Friday are skipped, never moved.
    assert [s[:10] for s in local(rules.expand(fifth, start, dt.timedelta(hours=1), NY, limit=9), NY)] == [
        "2027-07-30", "2027-10-29", "2027-12-31",
    ]  # fmt: skip


def test_the_28th_is_the_fourth_friday_not_the_fifth() -> None:
    fourth = Repeat(Frequency.MONTHLY, weekdays=("fri",), week_of_month=4, count=2)
    spans = rules.expand(fourth, dt.datetime(2027, 5, 28, 9), dt.timedelta(hours=1), NY, limit=9)  # noqa: DTZ001
    assert [s[:10] for s in local(spans, NY)] == ["2027-05-28", "2027-06-25"]


def test_repeat_rules_are_checked() -> None:
    assert "until" in rules.repeat_errors(Repeat(Frequency.DAILY))
    assert "month_day" in rules.repeat_errors(Repeat(Frequency.MONTHLY, count=2))
    assert "weekdays" in rules.repeat_errors(Repeat(Frequency.MONTHLY, week_of_month=2, count=2))
    assert rules.repeat_errors(Repeat(Frequency.WEEKLY, weekdays=("mon", "wed"), count=4)) == {}
    assert Repeat(Frequency.MONTHLY, month_day=31, count=2).rrule_text() == (
        "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=28,29,30,31;BYSETPOS=-1;COUNT=2"
    )


# --- booking a series ----------------------------------------------------------------------------------------


def series(lab, repeat, *, lines=None, start=None, end=None, **kwargs):
    return reservations.create_series(
        actor=SYSTEM, patron=kwargs.pop("patron", lab.patron), center=lab.center,
        starts_at=start or at(10, 10), ends_at=end or at(10, 12), repeat=repeat,
        lines=lines if lines is not None else [{"resource": lab.laptop.pk}], **kwargs,
    )  # fmt: skip


def policy(lab, **data) -> None:
    reservations.save_center_policy(actor=SYSTEM, center=lab.center, data=data)


@pytest.mark.django_db
def test_a_weekly_series_books_every_occurrence_across_the_autumn_change(lab) -> None:
    policy(lab, series_horizon_days=365)
    made = series(
        lab, {"frequency": "weekly", "weekdays": "mon", "until": "2027-11-30"},
        start=dt.datetime(2027, 10, 25, 10), end=dt.datetime(2027, 10, 25, 12),  # noqa: DTZ001
    )  # fmt: skip
    assert len(made.booked) == 6
    assert made.conflicts == []
    zone = ZoneInfo(NY)
    assert {r.starts_at.astimezone(zone).hour for r in made.booked} == {10}
    assert {r.series_id for r in made.booked} == {made.series.pk}
    assert made.series.rule == "FREQ=WEEKLY;INTERVAL=1;BYDAY=MO;UNTIL=20271130T235959"


@pytest.mark.django_db
def test_a_london_center_keeps_1900_across_the_change(frozen_now) -> None:
    library = make_library(time_zone=LONDON)
    center = make_center(library)
    rooms = make_type(library, "Rooms", centers=[center])
    room = make_resource(library, rooms, center)
    reservations.save_center_policy(actor=SYSTEM, center=center, data={"series_horizon_days": 365})
    made = reservations.create_series(
        actor=SYSTEM, patron=make_patron(library), center=center, starts_at="2027-10-21T19:00",
        ends_at="2027-10-21T20:00", repeat={"frequency": "weekly", "count": 3}, lines=[{"resource": room.pk}],
    )  # fmt: skip
    shown = [f"{r.starts_at.astimezone(ZoneInfo(LONDON)):%m-%d %H:%M %z}" for r in made.booked]
    assert shown == ["10-21 19:00 +0100", "10-28 19:00 +0100", "11-04 19:00 +0000"]


@pytest.mark.django_db
def test_each_conflicting_occurrence_is_reported_with_a_substitute_and_the_rest_booked(lab) -> None:
    other = book(lab, at(17, 11), at(17, 13), patron=make_patron(lab.library))
    made = series(lab, {"frequency": "weekly", "count": 3})
    assert [r.starts_at for r in made.booked] == [at(10, 10), at(24, 10)]
    [conflict] = made.conflicts
    assert conflict.starts_at == at(17, 10)
    assert [r["code"] for r in conflict.reasons] == ["resource_booked"]
    assert conflict.substitutes == {0: lab.spare}
    assert other.state == "reserved"


@pytest.mark.django_db
def test_a_conflicting_occurrence_booked_with_its_substitute_joins_the_series(lab) -> None:
    book(lab, at(17, 11), at(17, 13), patron=make_patron(lab.library))
    made = series(lab, {"frequency": "weekly", "count": 3})
    [conflict] = made.conflicts

    joined = book(lab, conflict.starts_at, conflict.ends_at, [{"resource": lab.spare.pk}], series=made.series)

    assert joined.series_id == made.series.pk
    cancelled = reservations.cancel_series(actor=SYSTEM, from_occurrence=made.booked[0])
    assert joined.pk in {r.pk for r in cancelled}
    stranger = make_patron(lab.library)
    with pytest.raises(FieldError, match="same patron"):
        book(lab, at(31, 10), at(31, 12), patron=stranger, series=made.series)
    assert not Reservation.objects.filter(patron=stranger).exists()


@pytest.mark.django_db
def test_all_or_nothing_refuses_every_occurrence_when_one_clashes(lab) -> None:
    book(lab, at(17, 11), at(17, 13), patron=make_patron(lab.library))
    with pytest.raises(Refused) as refused:
        series(lab, {"frequency": "weekly", "count": 3}, all_or_nothing=True)
    [reason] = refused.value.reasons
    assert (reason["code"], reason["occurrence"], reason["substitute.0"]) == ("resource_booked", "1", str(lab.spare.pk))
    assert not ReservationSeries.objects.exists()
    assert Reservation.objects.count() == 1


@pytest.mark.django_db
def test_the_quota_counts_the_whole_series_before_anything_is_written(lab) -> None:
    policy(lab, max_open_reservations=3)
    book(lab, at(5, 10), at(5, 12))
    with pytest.raises(Refused) as refused:
        series(lab, {"frequency": "daily", "count": 3})
    assert [r["code"] for r in refused.value.reasons] == ["too_many_open_reservations"]
    assert Reservation.objects.count() == 1
    assert len(series(lab, {"frequency": "daily", "count": 2}).booked) == 2


@pytest.mark.django_db
def test_series_are_capped_by_count_and_horizon(lab) -> None:
    policy(lab, series_max_occurrences=4, series_horizon_days=20)
    with pytest.raises(Refused) as refused:
        series(lab, {"frequency": "daily", "count": 5})
    assert [r["code"] for r in refused.value.reasons] == ["series_too_long"]
    with pytest.raises(Refused) as refused:
        series(lab, {"frequency": "weekly", "count": 4})
    assert [r["code"] for r in refused.value.reasons] == ["series_beyond_horizon"]
    # An unbounded rule (until far away) stops at the cap instead of running on.
    with pytest.raises(Refused):
        series(lab, {"frequency": "daily", "until": "2099-01-01"})
    assert len(series(lab, {"frequency": "daily", "count": 4}).booked) == 4


@pytest.mark.django_db
def test_bad_repeat_rules_name_the_field(lab) -> None:
    with pytest.raises(ValidationFailed) as bad:
        series(lab, {"frequency": "yearly", "count": 2})
    assert "repeat.frequency" in bad.value.errors
    with pytest.raises(ValidationFailed) as bad:
        series(lab, {"frequency": "monthly", "week_of_month": "last", "weekdays": "fri,sat", "count": 2})
    assert "repeat.weekdays" in bad.value.errors


@pytest.mark.django_db
def test_cancel_this_and_the_rest_leaves_earlier_and_past_occurrences(lab) -> None:
    made = series(lab, {"frequency": "weekly", "count": 4})
    first, second, third, fourth = made.booked
    reservations.cancel_reservation(actor=SYSTEM, reservation=third)  # a single occurrence alone
    cancelled = reservations.cancel_series(actor=SYSTEM, from_occurrence=second)
    assert [r.pk for r in cancelled] == [second.pk, fourth.pk]
    states = dict(Reservation.objects.values_list("pk", "state"))
    assert [states[r.pk] for r in made.booked] == ["reserved", "cancelled", "cancelled", "cancelled"]
    with clock.frozen(at(10, 11)):
        with pytest.raises(Conflict) as refused:
            reservations.cancel_series(actor=SYSTEM, from_occurrence=first)
        assert refused.value.code == "occurrence_in_past"
        with pytest.raises(Conflict):
            reservations.cancel_reservation(actor=SYSTEM, reservation=first)


def test_now_is_a_monday_far_from_dst() -> None:
    assert NOW.weekday() == 0


@pytest.mark.django_db
def test_a_series_never_double_books_itself(lab) -> None:
    # Each occurrence lasts 26 hours, so the next day's overlaps it; a type hold counts units the same way.
    made = series(lab, {"frequency": "daily", "count": 3}, end=at(11, 12))
    assert [r.starts_at for r in made.booked] == [at(10, 10), at(12, 10)]
    assert [r["code"] for r in made.conflicts[0].reasons] == ["resource_booked"]
    assert made.conflicts[0].substitutes == {0: lab.spare}
    typed = series(
        lab, {"frequency": "daily", "count": 2}, start=at(20, 10), end=at(21, 12),
        lines=[{"resource_type": lab.laptops.pk, "quantity": 2}],
    )  # fmt: skip
    assert len(typed.booked) == 1
    assert [r["code"] for r in typed.conflicts[0].reasons] == ["type_units_unavailable"]
    assert typed.booked[0].events.get().to_state == "reserved"


@pytest.mark.django_db
def test_a_series_of_a_kit_books_its_parts_and_refuses_a_part_listed_again(lab) -> None:
    kits = make_type(lab.library, "Kits", centers=[lab.center])
    kit = make_resource(lab.library, kits, lab.center, identifier="KIT-1")
    inner = make_resource(lab.library, kits, lab.center, identifier="KIT-2")
    catalog.save_resource(actor=SYSTEM, library=lab.library, resource=inner, data={"contained_in": kit.pk})
    catalog.save_resource(actor=SYSTEM, library=lab.library, resource=lab.spare, data={"contained_in": inner.pk})
    made = series(lab, {"frequency": "weekly", "count": 2}, lines=[{"resource": kit.pk}])
    assert len(made.booked) == 2
    for reservation in made.booked:
        booked = set(Occupancy.objects.filter(reservation=reservation).values_list("resource_id", flat=True))
        assert booked == {kit.pk, inner.pk, lab.spare.pk}  # the kit, its part and the part's part
    # A part of a part is still "already in this reservation", also when its kit is listed too.
    with pytest.raises(FieldError, match="already in this reservation"):
        series(lab, {"frequency": "weekly", "count": 2}, start=at(11, 10), end=at(11, 12),
               lines=[{"resource": inner.pk}, {"resource": kit.pk}])  # fmt: skip
    assert not ReservationSeries.objects.filter(patron=lab.patron).exclude(pk=made.series.pk).exists()
