"""One concrete unit for every type hold's whole span (rules.assign_units and friends): no database."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from patronage.reservations.rules import (
    Interval,
    Unit,
    assign_units,
    chain_span,
    components,
    first_free,
    holds_fit,
    unit_count_free,
    units_free,
)

DAY = dt.datetime(2027, 5, 10, tzinfo=dt.UTC)


def h(hour: float) -> dt.datetime:
    return DAY + dt.timedelta(hours=hour)


def span(a: float, b: float) -> tuple[dt.datetime, dt.datetime]:
    return (h(a), h(b))


def test_two_units_booked_back_to_back_cannot_hold_the_span_across_the_change() -> None:
    # The known limit of counting: A booked 09-11, B booked 11-13; at no instant are both in use, yet
    # no single unit is free from 10 to 12.
    units = [Unit(1, (span(9, 11),)), Unit(2, (span(11, 13),))]
    hold = Interval(h(10), h(12))
    fit = assign_units(units, [hold])
    assert not fit.ok
    assert fit.decided
    assert unit_count_free(units, [], h(10), h(12)) == 0
    assert units_free(units, [], h(10), h(12)) == []
    # Each half on its own fits, and so does the span the first unit frees up for.
    assert assign_units(units, [Interval(h(11), h(12))]).assignment == {0: (1,)}
    assert assign_units(units, [Interval(h(13), h(15))]).ok


def test_back_to_back_holds_share_a_unit() -> None:
    units = [Unit(1)]
    fit = assign_units(units, [Interval(h(9), h(11)), Interval(h(11), h(13)), Interval(h(13), h(14))])
    assert fit.assignment == {0: (1,), 1: (1,), 2: (1,)}
    assert not assign_units(units, [Interval(h(9), h(11)), Interval(h(10.5), h(12))]).ok


def test_a_quantity_takes_distinct_units() -> None:
    units = [Unit(1), Unit(2), Unit(3, (span(10, 11),))]
    fit = assign_units(units, [Interval(h(9), h(12), 2)])
    assert fit.assignment is not None
    assert sorted(fit.assignment[0]) == [1, 2]
    assert not assign_units(units, [Interval(h(9), h(12), 3)]).ok
    assert unit_count_free(units, [], h(9), h(12)) == 2
    assert unit_count_free(units, [], h(11), h(12)) == 3


def test_out_of_service_units_serve_spans_ending_by_then() -> None:
    units = [Unit(1, out_of_service_from=h(12)), Unit(2)]
    assert assign_units(units, [Interval(h(10), h(12), 2)]).ok
    assert not assign_units(units, [Interval(h(10), h(12.5), 2)]).ok
    assert unit_count_free(units, [], h(10), h(13)) == 1


def test_the_best_fit_keeps_the_free_unit_for_the_long_hold() -> None:
    # Unit 1 is free until 12, unit 2 for good. A first-free choice would give the short hold unit 2 and
    # find nothing for the long one; best fit (soonest next booking) takes unit 1 for the short one.
    units = [Unit(2), Unit(1, (span(12, 14),))]
    fit = assign_units(units, [Interval(h(9), h(11)), Interval(h(10), h(16))])
    assert fit.assignment == {0: (1,), 1: (2,)}


def test_search_backtracks_where_the_greedy_choice_is_wrong() -> None:
    # The short hold's best fit (unit 1, next booked at 12) leaves only unit 2 for 11-13, and unit 2 is
    # booked from 12.5: the search must move the short hold to unit 3.
    units = [Unit(1, (span(12, 20),)), Unit(2, (span(12.5, 20),)), Unit(3, (span(14, 20),))]
    holds = [Interval(h(9), h(10)), Interval(h(9.5), h(11.5)), Interval(h(11), h(13.5))]
    fit = assign_units(units, holds)
    assert fit.ok
    assert fit.assignment is not None
    assert fit.assignment[2] == (3,)


def test_an_exhausted_budget_refuses_without_deciding() -> None:
    units = [Unit(i, (span(5 + i, 5.5 + i),)) for i in range(6)]
    holds = [Interval(h(i), h(i + 3)) for i in range(8)]
    assert not assign_units(units, holds, budget=1).ok
    assert not assign_units(units, holds, budget=1).decided


def test_chains_of_overlapping_holds_are_independent() -> None:
    holds = [Interval(h(9), h(11)), Interval(h(10), h(12)), Interval(h(12), h(13)), Interval(h(15), h(16))]
    assert components(holds, [span(10.5, 10.6)]) == [[0, 1]]
    assert components(holds, [span(12, 15.5)]) == [[2], [3]]
    assert components(holds, [span(13, 15)]) == []
    # An impossible chain elsewhere (two holds, one unit) does not stop a booking that does not touch it.
    units = [Unit(1)]
    bad = [Interval(h(9), h(11)), Interval(h(9), h(11))]
    assert holds_fit(units, [*bad, Interval(h(14), h(15))], [span(14, 15)]).ok
    assert not holds_fit(units, [*bad, Interval(h(10), h(15))], [span(10, 15)]).ok


def test_the_chain_span_follows_overlapping_holds_only() -> None:
    holds = [span(9, 11), span(10.5, 14), span(13.5, 15), span(15, 16), span(7, 8)]
    # 10-12 touches 9-11 and 10.30-14, which touches 13.30-15; 15-16 only meets it end to end.
    assert chain_span(holds, h(10), h(12)) == span(9, 15)
    assert chain_span(holds, h(8), h(9)) == span(8, 9)
    assert chain_span([], h(8), h(9)) == span(8, 9)


def test_units_free_moves_holds_to_free_a_unit() -> None:
    # A hold 10-12 sits on one of two free units; either may be booked on its own, the hold taking the other.
    units = [Unit(1), Unit(2)]
    holds = [Interval(h(10), h(12))]
    assert units_free(units, holds, h(11), h(13)) == [1, 2]
    assert unit_count_free(units, holds, h(11), h(13)) == 1
    # Unit 2 is booked from 12.30, so a hold until 13 must take unit 1: only unit 2 is free before 10.30.
    units = [Unit(1), Unit(2, (span(12.5, 13),))]
    assert units_free(units, [Interval(h(10), h(13))], h(9), h(10.5)) == [2]


# --- against brute force ---------------------------------------------------------------------------------


def _valid(units: list[Unit], holds: list[Interval], assignment: dict[int, tuple[int, ...]]) -> bool:
    by_id = {u.id: u for u in units}
    taken: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {u.id: [] for u in units}
    for i, hold in enumerate(holds):
        ids = assignment.get(i, ())
        if len(ids) != hold.quantity or len(set(ids)) != len(ids):
            return False
        for unit_id in ids:
            unit = by_id[unit_id]
            if unit.out_of_service_from is not None and unit.out_of_service_from < hold.end:
                return False
            if any(s < hold.end and e > hold.start for s, e in [*unit.busy, *taken[unit_id]]):
                return False
            taken[unit_id].append((hold.start, hold.end))
    return True


def _brute_force(units: list[Unit], holds: list[Interval]) -> bool:
    per_hold = [list(itertools.combinations([u.id for u in units], hold.quantity)) for hold in holds]
    return any(_valid(units, holds, dict(enumerate(choice))) for choice in itertools.product(*per_hold))


_hours = st.integers(min_value=0, max_value=12)


@st.composite
def _cases(draw: st.DrawFn) -> tuple[list[Unit], list[Interval]]:
    units = []
    for unit_id in range(draw(st.integers(min_value=1, max_value=3))):
        busy: list[tuple[int, int]] = []
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            a, b = sorted(draw(st.tuples(_hours, _hours)))
            if a < b and all(b <= s or a >= e for s, e in busy):
                busy.append((a, b))
        out = draw(st.one_of(st.none(), _hours))
        units.append(Unit(unit_id, tuple(span(a, b) for a, b in busy), None if out is None else h(out)))
    holds = []
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        a, b = sorted(draw(st.tuples(_hours, _hours)))
        if a < b:
            holds.append(Interval(h(a), h(b), draw(st.integers(min_value=1, max_value=2))))
    return units, holds


@settings(max_examples=400, deadline=None)
@given(_cases())
def test_accepts_exactly_when_an_assignment_exists_and_gives_a_valid_one(
    case: tuple[list[Unit], list[Interval]],
) -> None:
    units, holds = case
    fit = assign_units(units, holds)
    assert fit.decided
    if fit.assignment is not None:
        assert _valid(units, holds, dict(fit.assignment))
    assert fit.ok == _brute_force(units, holds)


@settings(max_examples=200, deadline=None)
@given(_cases(), _hours, st.integers(min_value=1, max_value=4))
def test_free_counts_and_free_units_are_what_booking_would_accept(
    case: tuple[list[Unit], list[Interval]], start: int, length: int
) -> None:
    units, holds = case
    if not _brute_force(units, holds):
        return  # free counts are asked of a state the bookings made, which always fits
    a, b = h(start), h(start + length)
    count = unit_count_free(units, holds, a, b)
    assert _brute_force(units, [*holds, Interval(a, b, count)]) if count else True
    assert not _brute_force(units, [*holds, Interval(a, b, count + 1)])
    free = units_free(units, holds, a, b)
    for unit in units:
        booked = [Unit(u.id, (*u.busy, (a, b)), u.out_of_service_from) if u.id == unit.id else u for u in units]
        fits_alone = (unit.out_of_service_from is None or unit.out_of_service_from >= b) and not any(
            s < b and e > a for s, e in unit.busy
        )
        assert (unit.id in free) == (fits_alone and _brute_force(booked, holds))
    assert (count > 0) == bool(free)


@settings(max_examples=200, deadline=None)
@given(_cases(), _hours, st.integers(min_value=1, max_value=4), st.permutations([0, 1, 2]))
def test_the_first_free_unit_is_the_first_of_the_free_units_in_the_order_asked(
    case: tuple[list[Unit], list[Interval]], start: int, length: int, order: list[int]
) -> None:
    # A series' substitute: the first resource by name that units_free lists, found without probing the rest.
    units, holds = case
    a, b = h(start), h(start + length)
    free = units_free(units, holds, a, b)
    wanted = [unit_id for unit_id in order if unit_id < len(units)]
    assert first_free(units, holds, a, b, wanted) == next((u for u in wanted if u in free), None)
