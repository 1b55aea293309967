"""The pure rules: no database, no clock."""

from __future__ import annotations

import datetime as dt

import pytest

from patronage.reservations.rules import (
    EDITABLE_STATES,
    OPEN_STATES,
    TRANSITIONS,
    Code,
    Interval,
    Policy,
    Request,
    State,
    Step,
    free_units,
    is_open_at,
    next_state,
    parse_open_hours,
    peak_during,
    request_reasons,
)

# Written out again on purpose: the table in rules.py must say exactly this.
EXPECTED = {
    (State.PENDING_APPROVAL, Step.APPROVE): State.RESERVED,
    (State.PENDING_APPROVAL, Step.REJECT): State.REJECTED,
    (State.PENDING_APPROVAL, Step.CANCEL): State.CANCELLED,
    (State.RESERVED, Step.CHECK_OUT): State.CHECKED_OUT,
    (State.RESERVED, Step.CANCEL): State.CANCELLED,
    (State.RESERVED, Step.MARK_NO_SHOW): State.NO_SHOW,
    (State.CHECKED_OUT, Step.CHECK_IN): State.COMPLETED,
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("step", list(Step))
def test_every_transition_is_allowed_or_refused_by_the_one_table(state: State, step: Step) -> None:
    assert next_state(state, step) == EXPECTED.get((state, step))


def test_the_table_and_the_state_sets() -> None:
    assert dict(TRANSITIONS) == EXPECTED
    assert set(OPEN_STATES) == {State.PENDING_APPROVAL, State.RESERVED, State.CHECKED_OUT}
    assert set(EDITABLE_STATES) == {State.PENDING_APPROVAL}
    ends = {State.COMPLETED, State.CANCELLED, State.REJECTED, State.NO_SHOW}
    assert not any(source in ends for source, _ in TRANSITIONS)  # final states stay final
    assert next_state("nonsense", "approve") is None


T0 = dt.datetime(2027, 5, 4, 10, tzinfo=dt.UTC)


def h(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


def test_back_to_back_intervals_never_count_together() -> None:
    assert peak_during([Interval(h(0), h(2))], [Interval(h(2), h(4))]) == 1
    assert peak_during([Interval(h(2), h(4))], [Interval(h(0), h(2))]) == 1


def test_a_minute_of_overlap_counts() -> None:
    assert peak_during([Interval(h(0), h(2) + dt.timedelta(minutes=1))], [Interval(h(2), h(4))]) == 2


def test_the_peak_is_taken_only_where_the_new_interval_lies() -> None:
    crowded_before = [Interval(h(0), h(1), 5)]
    assert peak_during(crowded_before, [Interval(h(1), h(2))]) == 1
    staggered = [Interval(h(0), h(3)), Interval(h(1), h(4)), Interval(h(3), h(5), 2)]
    assert peak_during(staggered, [Interval(h(2), h(3.5))]) == 4  # 1 + 1 from 3:00 on, plus 2 and itself


def test_free_units_over_a_span() -> None:
    busy = [Interval(h(0), h(2), 2), Interval(h(1), h(3))]
    assert free_units(4, busy, h(1), h(2)) == 1
    assert free_units(4, busy, h(2), h(3)) == 3
    assert free_units(2, busy, h(0), h(3)) == 0


def _request(**changes: object) -> Request:
    values: dict[str, object] = {
        "starts_at": h(24),
        "ends_at": h(26),
        "now": T0,
        "time_zone": "UTC",
        "title": "",
        "pickup_option": "desk",
        "delivery_location": "",
        "open_reservations": 0,
        "signature_on_file": True,
    }
    values.update(changes)
    return Request(**values)  # type: ignore[arg-type]


def test_lead_time_exactly_at_the_limit_is_allowed_and_a_second_less_is_not() -> None:
    policy = Policy(min_lead_minutes=24 * 60)
    assert request_reasons(policy, _request()) == []
    codes = [r.code for r in request_reasons(policy, _request(now=T0 + dt.timedelta(seconds=1)))]
    assert codes == [Code.INSIDE_LEAD_TIME]


def test_a_start_in_the_past_is_its_own_reason() -> None:
    codes = [r.code for r in request_reasons(Policy(), _request(starts_at=h(-1)))]
    assert codes == [Code.STARTS_IN_PAST]


def test_duration_exactly_at_the_limit_is_allowed() -> None:
    assert request_reasons(Policy(max_duration_minutes=120), _request()) == []
    codes = [r.code for r in request_reasons(Policy(max_duration_minutes=119), _request())]
    assert codes == [Code.DURATION_OVER_LIMIT]


def test_every_policy_reason_at_once() -> None:
    policy = Policy(
        min_lead_minutes=48 * 60,
        max_duration_minutes=60,
        max_open_reservations=1,
        title_required=True,
        desk_pickup=False,
        signature_required=True,
        open_hours=parse_open_hours({"mon": [["09:00", "17:00"]]}),
    )
    reasons = request_reasons(policy, _request(open_reservations=1, signature_on_file=False))
    assert [r.code for r in reasons] == [
        Code.INSIDE_LEAD_TIME,
        Code.DURATION_OVER_LIMIT,
        Code.OUTSIDE_OPEN_HOURS,
        Code.OUTSIDE_OPEN_HOURS,
        Code.TITLE_REQUIRED,
        Code.PICKUP_OPTION_NOT_OFFERED,
        Code.TOO_MANY_OPEN_RESERVATIONS,
        Code.SIGNATURE_MISSING,
    ]
    assert all(r.overridable for r in reasons)


def test_delivery_needs_a_listed_location() -> None:
    policy = Policy(delivery_locations=("Room 101", "Lab B"))
    assert request_reasons(policy, _request(pickup_option="delivery", delivery_location="Lab B")) == []
    reasons = request_reasons(policy, _request(pickup_option="delivery", delivery_location="Moon"))
    assert [r.code for r in reasons] == [Code.DELIVERY_LOCATION_UNKNOWN]
    assert not reasons[0].overridable
    reasons = request_reasons(Policy(), _request(pickup_option="delivery"))
    assert [r.code for r in reasons] == [Code.PICKUP_OPTION_NOT_OFFERED]


def test_an_end_before_the_start_is_not_overridable() -> None:
    reasons = request_reasons(Policy(), _request(ends_at=h(24)))
    assert [r.code for r in reasons] == [Code.END_NOT_AFTER_START]
    assert not reasons[0].overridable


def test_open_hours_include_both_ends() -> None:
    hours = parse_open_hours({"tue": [["09:00", "12:00"], ["13:00", "17:30"]]})
    tuesday = dt.datetime(2027, 5, 4, tzinfo=dt.UTC)  # the rule reads the wall clock of whatever zone
    assert is_open_at(hours, tuesday.replace(hour=9))
    assert is_open_at(hours, tuesday.replace(hour=17, minute=30))
    assert not is_open_at(hours, tuesday.replace(hour=12, minute=30))
    assert not is_open_at(hours, tuesday.replace(hour=17, minute=31))
    assert not is_open_at(hours, tuesday.replace(day=5, hour=10))  # Wednesday is not listed: closed
    assert is_open_at(None, tuesday)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"monday": []}, "Unknown weekday"),
        ({"mon": [["9", "17:00"]]}, "not a time"),
        ({"mon": [["17:00", "09:00"]]}, "ends before it starts"),
        ({"mon": [["09:00", "12:00"], ["11:00", "13:00"]]}, "overlap"),
        ({"mon": ["09:00-17:00"]}, "pair"),
        (["mon"], "per weekday"),
    ],
)
def test_bad_open_hours_say_what_to_fix(raw: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_open_hours(raw)


def test_empty_open_hours_mean_no_limit_and_24_00_closes_the_day() -> None:
    assert parse_open_hours({}) is None
    assert parse_open_hours({"sun": [["00:00", "24:00"]]}) == {"sun": ((0, 1440),)}
