"""Pure rules of reservations: the state table, the policy checks and the availability sweep.

Plain Python: facts in, answers out. No Django, no clock, no database. The values of ``State``, ``Step``
and ``Code`` are part of the public contract (pages, REST, later the portal) and never change once
released.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

# --- states and transitions -----------------------------------------------------------------------


class State(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    RESERVED = "reserved"
    CHECKED_OUT = "checked_out"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    NO_SHOW = "no_show"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class Step(StrEnum):
    """What someone does to a reservation; each step is one row of ``TRANSITIONS``."""

    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    CHECK_OUT = "check_out"
    MARK_NO_SHOW = "mark_no_show"
    CHECK_IN = "check_in"


# The one table of allowed transitions: (from, step) -> to. Anything not here is refused.
TRANSITIONS: Mapping[tuple[State, Step], State] = {
    (State.PENDING_APPROVAL, Step.APPROVE): State.RESERVED,
    (State.PENDING_APPROVAL, Step.REJECT): State.REJECTED,
    (State.PENDING_APPROVAL, Step.CANCEL): State.CANCELLED,
    (State.RESERVED, Step.CHECK_OUT): State.CHECKED_OUT,
    (State.RESERVED, Step.CANCEL): State.CANCELLED,
    (State.RESERVED, Step.MARK_NO_SHOW): State.NO_SHOW,
    (State.CHECKED_OUT, Step.CHECK_IN): State.COMPLETED,
}

# Open reservations hold their resources (their occupancy rows are active), count against the quota
# and stop the patron's deletion. Pending ones hold their slot too: approval must not find it taken.
OPEN_STATES: frozenset[State] = frozenset({State.PENDING_APPROVAL, State.RESERVED, State.CHECKED_OUT})
# Only a reservation still waiting for approval may be edited; an approved one may only be cancelled.
EDITABLE_STATES: frozenset[State] = frozenset({State.PENDING_APPROVAL})


def next_state(state: State | str, step: Step | str) -> State | None:
    """The state ``step`` leads to from ``state``, or None when the table does not allow it."""
    try:
        return TRANSITIONS.get((State(state), Step(step)))
    except ValueError:
        return None


def is_open(state: State | str) -> bool:
    return state in OPEN_STATES


# --- reasons --------------------------------------------------------------------------------------


class Code(StrEnum):
    END_NOT_AFTER_START = "end_not_after_start"
    STARTS_IN_PAST = "starts_in_past"
    DURATION_OVER_LIMIT = "duration_over_limit"
    INSIDE_LEAD_TIME = "inside_lead_time"
    OUTSIDE_OPEN_HOURS = "outside_open_hours"
    TITLE_REQUIRED = "title_required"
    PICKUP_OPTION_NOT_OFFERED = "pickup_option_not_offered"
    DELIVERY_LOCATION_UNKNOWN = "delivery_location_unknown"
    TOO_MANY_OPEN_RESERVATIONS = "too_many_open_reservations"
    SIGNATURE_MISSING = "signature_missing"
    RESOURCE_NOT_AT_CENTER = "resource_not_at_center"
    TYPE_NOT_LENT_HERE = "type_not_lent_here"
    RESOURCE_OUT_OF_SERVICE = "resource_out_of_service"
    RESOURCE_HIDDEN = "resource_hidden"
    NOT_AUTHORIZED_FOR_RESOURCE_TYPE = "not_authorized_for_resource_type"
    RESOURCE_BOOKED = "resource_booked"
    RESOURCE_BUFFER = "resource_buffer"
    TYPE_UNITS_UNAVAILABLE = "type_units_unavailable"


# What staff with the override permission may not override: impossible requests and availability.
# Everything else (these policy rules and the patron's standing) may be overridden with a comment.
NOT_OVERRIDABLE: frozenset[str] = frozenset(
    {
        Code.END_NOT_AFTER_START,
        Code.STARTS_IN_PAST,
        Code.RESOURCE_NOT_AT_CENTER,
        Code.TYPE_NOT_LENT_HERE,
        Code.RESOURCE_OUT_OF_SERVICE,
        Code.DELIVERY_LOCATION_UNKNOWN,
        Code.RESOURCE_BOOKED,
        Code.RESOURCE_BUFFER,
        Code.TYPE_UNITS_UNAVAILABLE,
        "series_too_long",
        "series_beyond_horizon",
    }
)


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def overridable(self) -> bool:
        return self.code not in NOT_OVERRIDABLE

    def as_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message, **self.details}


# --- policy -----------------------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")
OpenHours = Mapping[str, tuple[tuple[int, int], ...]]  # weekday -> (start, end) in minutes after midnight


def parse_open_hours(raw: object) -> OpenHours | None:
    """Open hours from their stored form; None when there is no limit. Raises ValueError saying what to fix."""
    if raw in (None, {}, ""):
        return None
    if not isinstance(raw, Mapping):
        raise ValueError('Give open hours per weekday, e.g. {"mon": [["09:00", "17:00"]]}.')
    hours: dict[str, tuple[tuple[int, int], ...]] = {}
    for day, spans in raw.items():
        if day not in WEEKDAYS:
            raise ValueError(f"Unknown weekday {str(day)[:10]!r}; use {', '.join(WEEKDAYS)}.")
        if not isinstance(spans, list | tuple):
            raise ValueError(
                f'{day}: give a list of [start, end] pairs, e.g. [["09:00", "12:00"], ["13:00", "17:00"]].'
            )
        parsed: list[tuple[int, int]] = []
        for span in spans:
            if not isinstance(span, list | tuple) or len(span) != 2:
                raise ValueError(f'{day}: each opening is a [start, end] pair such as ["09:00", "17:00"].')
            start, end = (_minutes(str(value), day) for value in span)
            if end <= start:
                raise ValueError(
                    f"{day}: {span[0]}-{span[1]} ends before it starts; opening spans stay within one day."
                )
            parsed.append((start, end))
        parsed.sort()
        if any(a[1] > b[0] for a, b in itertools.pairwise(parsed)):
            raise ValueError(f"{day}: the opening spans overlap; merge them.")
        hours[day] = tuple(parsed)
    return hours


def _minutes(text: str, day: str) -> int:
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"{day}: {text[:10]!r} is not a time; write HH:MM on a 24-hour clock, e.g. 08:30.")
    if text.strip() == "24:00":
        return 24 * 60
    return int(match.group(1)) * 60 + int(match.group(2))


def is_open_at(hours: OpenHours | None, local: dt.datetime) -> bool:
    """Whether a local wall-clock time falls inside the open hours (both ends included)."""
    if hours is None:
        return True
    minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
    return any(start <= minute <= end for start, end in hours.get(WEEKDAYS[local.weekday()], ()))


@dataclass(frozen=True)
class Policy:
    """A checkout center's rules; the defaults are those of a center without a policy row."""

    min_lead_minutes: int = 0
    max_duration_minutes: int | None = None
    max_open_reservations: int | None = None
    approval_required: bool = False
    title_required: bool = False
    desk_pickup: bool = True
    delivery_locations: tuple[str, ...] = ()
    signature_required: bool = False
    series_horizon_days: int = 180
    series_max_occurrences: int = 52
    open_hours: OpenHours | None = None
    no_show_minutes: int = 30
    overdue_fee: Decimal | None = None
    overdue_grace_minutes: int = 0


@dataclass(frozen=True)
class Request:
    """What a reservation asks for, with the facts about the patron the rules need."""

    starts_at: dt.datetime
    ends_at: dt.datetime
    now: dt.datetime
    time_zone: str
    title: str
    pickup_option: str
    delivery_location: str
    open_reservations: int  # the patron's other open reservations at this center
    signature_on_file: bool
    new_reservations: int = 1  # a series asks for all its occurrences at once


def _local(instant: dt.datetime, time_zone: str) -> str:
    return f"{instant.astimezone(ZoneInfo(time_zone)):%a %Y-%m-%d %H:%M}"


def _duration(minutes: float) -> str:
    minutes = int(minutes)
    if minutes % (24 * 60) == 0 and minutes:
        days = minutes // (24 * 60)
        return f"{days} day{'s' if days != 1 else ''}"
    if minutes % 60 == 0 and minutes:
        hours = minutes // 60
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def lead_time_reason(policy: Policy, start: dt.datetime, now: dt.datetime, *, which: str = "start") -> Reason | None:
    """A start must lie at least the lead time ahead; exactly at the limit is allowed."""
    if start < now:
        return Reason(Code.STARTS_IN_PAST, f"The {which} lies in the past; choose a later time.", {"which": which})
    if start - now < dt.timedelta(minutes=policy.min_lead_minutes):
        return Reason(
            Code.INSIDE_LEAD_TIME,
            f"The {which} is less than {_duration(policy.min_lead_minutes)} away; this center needs "
            f"{_duration(policy.min_lead_minutes)} notice.",
            {"which": which, "min_lead_minutes": str(policy.min_lead_minutes)},
        )
    return None


def request_reasons(policy: Policy, request: Request) -> list[Reason]:
    """Every policy rule the request breaks, in a stable order."""
    found: list[Reason] = []
    r = request
    if r.ends_at <= r.starts_at:
        found.append(Reason(Code.END_NOT_AFTER_START, "The end must come after the start; check both times."))
    lead = lead_time_reason(policy, r.starts_at, r.now)
    if lead is not None:
        found.append(lead)
    length = (r.ends_at - r.starts_at).total_seconds() / 60
    if policy.max_duration_minutes is not None and length > policy.max_duration_minutes:
        found.append(
            Reason(
                Code.DURATION_OVER_LIMIT,
                f"Reservations here last at most {_duration(policy.max_duration_minutes)}; "
                f"this one lasts {_duration(length)}. Shorten it.",
                {"max_duration_minutes": str(policy.max_duration_minutes)},
            )
        )
    for which, instant in (("pickup", r.starts_at), ("return", r.ends_at)):
        if not is_open_at(policy.open_hours, instant.astimezone(ZoneInfo(r.time_zone))):
            found.append(
                Reason(
                    Code.OUTSIDE_OPEN_HOURS,
                    f"The center is closed at the {which} time ({_local(instant, r.time_zone)}); "
                    "choose a time within its open hours.",
                    {"which": which},
                )
            )
    if policy.title_required and not r.title.strip():
        found.append(Reason(Code.TITLE_REQUIRED, "This center needs the event or class title; add it."))
    if r.pickup_option == "desk" and not policy.desk_pickup:
        found.append(
            Reason(Code.PICKUP_OPTION_NOT_OFFERED, "This center does not hand out at the desk; choose delivery.")
        )
    if r.pickup_option == "delivery":
        if not policy.delivery_locations:
            found.append(
                Reason(Code.PICKUP_OPTION_NOT_OFFERED, "This center does not deliver; choose pickup at the desk.")
            )
        elif r.delivery_location not in policy.delivery_locations:
            found.append(
                Reason(
                    Code.DELIVERY_LOCATION_UNKNOWN,
                    f"Choose a delivery location from the list: {', '.join(policy.delivery_locations)}.",
                )
            )
    if (
        policy.max_open_reservations is not None
        and r.open_reservations + r.new_reservations > policy.max_open_reservations
    ):
        found.append(
            Reason(
                Code.TOO_MANY_OPEN_RESERVATIONS,
                f"A patron may hold {policy.max_open_reservations} open reservation(s) here and has "
                f"{r.open_reservations}; cancel one or wait until one is returned.",
                {"limit": str(policy.max_open_reservations), "open": str(r.open_reservations)},
            )
        )
    if policy.signature_required and not r.signature_on_file:
        found.append(
            Reason(
                Code.SIGNATURE_MISSING,
                "This center lends only to patrons with a signature on file; staff record it in the Membership section.",
            )
        )
    return found


@dataclass(frozen=True)
class Item:
    """One thing a reservation would book: a resource (maybe a kit's part) or units of a type."""

    label: str
    type_name: str
    is_resource: bool
    at_center: bool
    in_service: bool
    visible: bool
    requires_authorization: bool
    authorized: bool
    details: Mapping[str, str] = field(default_factory=dict)


def item_reasons(items: Iterable[Item], *, portal: bool) -> list[Reason]:
    """What stands in the way of each item, apart from other bookings."""
    found: list[Reason] = []
    for item in items:
        if not item.at_center:
            if item.is_resource:
                found.append(
                    Reason(Code.RESOURCE_NOT_AT_CENTER, f"{item.label} is lent from another center.", item.details)
                )
            else:
                found.append(
                    Reason(Code.TYPE_NOT_LENT_HERE, f"This center does not lend {item.type_name}.", item.details)
                )
        if not item.in_service:
            found.append(
                Reason(
                    Code.RESOURCE_OUT_OF_SERVICE,
                    f"{item.label} is out of service during this time; choose another.",
                    item.details,
                )
            )
        if portal and not item.visible:
            found.append(Reason(Code.RESOURCE_HIDDEN, f"{item.label} cannot be reserved in the portal.", item.details))
        if item.requires_authorization and not item.authorized:
            found.append(
                Reason(
                    Code.NOT_AUTHORIZED_FOR_RESOURCE_TYPE,
                    f"{item.type_name} needs an authorization the patron does not hold; staff grant it after "
                    "training or on request.",
                    item.details,
                )
            )
    return found


# --- availability ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A half-open span ``[start, end)`` holding ``quantity`` units."""

    start: dt.datetime
    end: dt.datetime
    quantity: int = 1


def blocked_span(
    starts_at: dt.datetime, ends_at: dt.datetime, before_minutes: int, after_minutes: int
) -> tuple[dt.datetime, dt.datetime]:
    """The span a booking keeps a resource from others: its own, widened by the buffers."""
    return starts_at - dt.timedelta(minutes=before_minutes), ends_at + dt.timedelta(minutes=after_minutes)


def peak_during(existing: Sequence[Interval], new: Sequence[Interval]) -> int:
    """The most units in use at any instant covered by ``new``, counting ``existing`` and ``new`` together.

    A sweep over the interval ends: each start adds its quantity, each end takes it away, and the level
    between two consecutive instants is what is in use then. Intervals are half-open, so one that ends
    when another starts never counts together with it (back-to-back bookings fit).
    """
    deltas: dict[dt.datetime, list[int]] = defaultdict(lambda: [0, 0])
    for interval in existing:
        deltas[interval.start][0] += interval.quantity
        deltas[interval.end][0] -= interval.quantity
    for interval in new:
        deltas[interval.start][0] += interval.quantity
        deltas[interval.end][0] -= interval.quantity
        deltas[interval.start][1] += 1
        deltas[interval.end][1] -= 1
    level = covered = peak = 0
    for instant in sorted(deltas):
        change, coverage = deltas[instant]
        level += change
        covered += coverage
        if covered > 0:
            peak = max(peak, level)
    return peak


def free_units(capacity: int, existing: Sequence[Interval], start: dt.datetime, end: dt.datetime) -> int:
    """How many more units fit for the whole of ``[start, end)``."""
    in_use = peak_during(existing, [Interval(start, end, 0)])
    return max(capacity - in_use, 0)


# --- one unit for a hold's whole span -------------------------------------------------------------
#
# Counting units instant by instant is not enough: with two units, A booked 09-11 and B booked 11-13, a
# hold for 10-12 never sees more than two units in use, yet no single unit is free from 10 to 12. A type
# hold is only promised when every hold can be given one concrete unit for its whole blocked span, the
# specific bookings staying on their own units. That is precolouring extension on an interval graph
# (units are colours, specific bookings precoloured intervals), which is NP-complete in general, so the
# search below is exact within a budget and refuses when the budget runs out: it never overpromises.


@dataclass(frozen=True)
class Unit:
    """One resource of a type at a center as the assignment sees it: its own bookings (blocked spans,
    specific ones only) and when it goes out of service (it serves spans ending at or before then)."""

    id: int
    busy: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    out_of_service_from: dt.datetime | None = None


@dataclass(frozen=True)
class Fit:
    """The answer of ``assign_units``: per hold (its index) the units it gets, or None when the holds
    cannot all be given units. ``decided`` is False when the search ran out of budget; the answer is
    then None as well (refuse rather than overpromise)."""

    assignment: Mapping[int, tuple[int, ...]] | None
    decided: bool = True

    @property
    def ok(self) -> bool:
        return self.assignment is not None


# Assignments tried before giving up. Real cases need one per unit of demand (the first, greedy, path)
# or a few more; the budget only bounds adversarial ones.
SEARCH_BUDGET = 20_000


def components(holds: Sequence[Interval], touching: Sequence[tuple[dt.datetime, dt.datetime]]) -> list[list[int]]:
    """The indexes of the holds in each chain of overlapping holds that overlaps a span of ``touching``.

    Holds in different chains never overlap, so their units can be chosen independently; a booking only
    matters to the chains it overlaps.
    """
    order = sorted((i for i, h in enumerate(holds) if h.quantity > 0), key=lambda i: holds[i].start)
    chains: list[tuple[dt.datetime, dt.datetime, list[int]]] = []
    for i in order:
        hold = holds[i]
        if chains and hold.start < chains[-1][1]:
            start, end, members = chains[-1]
            members.append(i)
            chains[-1] = (start, max(end, hold.end), members)
        else:
            chains.append((hold.start, hold.end, [i]))
    return [members for start, end, members in chains if any(s < end and e > start for s, e in touching)]


def chain_span(
    holds: Iterable[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The span covered by ``[start, end)`` and every hold chained to it through overlapping holds: the
    holds whose units a booking in ``[start, end)`` can affect all lie inside it (see ``components``)."""
    spans = sorted(holds)
    low, high = start, end
    grown = True
    while grown:
        grown = False
        for s, e in spans:
            if s >= high:
                break
            if e > low and (s < low or e > high):
                low, high, grown = min(low, s), max(high, e), True
    return low, high


def assign_units(units: Sequence[Unit], holds: Sequence[Interval], *, budget: int = SEARCH_BUDGET) -> Fit:
    """Give each hold ``quantity`` distinct units, each free (no own booking, in service) for the hold's
    whole span and not given to an overlapping hold. Exact: a depth-first search over the holds in order
    of start, trying first the unit whose next booking comes soonest after the hold (best fit; the
    greedy answer is the first path), skipping units whose futures are identical. Half-open spans:
    back-to-back fits.
    """
    jobs = sorted(
        ((h.start, h.end, i) for i, h in enumerate(holds) for _ in range(h.quantity)), key=lambda j: (j[0], -j[2])
    )
    if not jobs:
        return Fit({i: () for i in range(len(holds))})
    horizon = max(j[1] for j in jobs)
    blocks: list[list[tuple[dt.datetime, dt.datetime]]] = []
    for unit in units:
        spans = sorted(unit.busy)
        if unit.out_of_service_from is not None and unit.out_of_service_from < horizon:
            spans.append((unit.out_of_service_from, horizon))
            spans.sort()
        merged: list[tuple[dt.datetime, dt.datetime]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        blocks.append(merged)
    # A necessary condition, checked first: at no instant may more units be needed than are free.
    level: dict[dt.datetime, list[int]] = defaultdict(lambda: [0, 0])
    for start, end, _ in jobs:
        level[start][0] += 1
        level[end][0] -= 1
        level[start][1] += 1
        level[end][1] -= 1
    for merged in blocks:
        for start, end in merged:
            level[start][0] += 1
            level[end][0] -= 1
    in_use = covered = 0
    for instant in sorted(level):
        in_use += level[instant][0]
        covered += level[instant][1]
        if covered > 0 and in_use > len(units):
            return Fit(None)
    ends = [[end for _, end in merged] for merged in blocks]
    # futures[u][k]: a number naming the unit's bookings from its k-th on, equal for equal sequences
    # (read off once here, rather than a tuple of them built for every unit at every step).
    names: dict[tuple[tuple[dt.datetime, dt.datetime], int], int] = {}
    futures_of: list[list[int]] = []
    for merged in blocks:
        named = [0] * (len(merged) + 1)
        for k in range(len(merged) - 1, -1, -1):
            named[k] = names.setdefault((merged[k], named[k + 1]), len(names) + 1)
        futures_of.append(named)
    last_end: list[dt.datetime | None] = [None] * len(units)
    chosen: list[int] = [-1] * len(jobs)

    def candidates(index: int) -> list[int]:
        start, end, hold = jobs[index]
        same_hold_before = index > 0 and jobs[index - 1][2] == hold
        floor = chosen[index - 1] if same_hold_before else -1
        found: list[tuple[dt.datetime | None, float, int, int]] = []
        futures: set[int] = set()
        for u in range(len(units)):
            previous = last_end[u]
            if u <= floor or (previous is not None and previous > start):
                continue
            k = bisect.bisect_right(ends[u], start)
            if k < len(blocks[u]) and blocks[u][k][0] < end:
                continue
            future = futures_of[u][k]
            if future in futures:
                continue  # another unit with the same bookings ahead is tried already
            futures.add(future)
            freed = -(previous - start).total_seconds() if previous is not None else float("inf")
            found.append((blocks[u][k][0] if future else None, freed, u, 0))
        # Soonest next booking first (None: free for good, last), then the unit freed most recently.
        found.sort(key=lambda c: (c[0] is None, c[0] or start, c[1], c[2]))
        return [c[2] for c in found]

    # States known to fail: from job i on, with these units still busy (until when) and this unit floor,
    # no assignment exists. Only busy units matter: a unit free at a job's start is free for every later
    # job as far as earlier jobs go. Skipping a failed state again keeps the search from redoing the same
    # dead end under every combination of unrelated earlier choices.
    failed: set[tuple[Any, ...]] = set()

    def state(index: int) -> tuple[Any, ...]:
        start, _, hold = jobs[index]
        floor = chosen[index - 1] if index > 0 and jobs[index - 1][2] == hold else -1
        busy = tuple((u, e) for u, e in enumerate(last_end) if e is not None and e > start)
        return (index, floor, busy)

    stack: list[tuple[list[int], int, dt.datetime | None]] = []
    keys: list[tuple[Any, ...]] = [state(0)]
    tries = 0
    index = 0
    options = candidates(0)
    position = 0
    while True:
        if position < len(options):
            tries += 1
            if tries > budget:
                return Fit(None, decided=False)
            u = options[position]
            stack.append((options, position, last_end[u]))
            chosen[index] = u
            last_end[u] = jobs[index][1]
            index += 1
            if index == len(jobs):
                break
            key = state(index)
            keys.append(key)
            options, position = ([] if key in failed else candidates(index)), 0
            continue
        failed.add(keys.pop())
        if not stack:
            return Fit(None)
        index -= 1
        options, position, previous = stack.pop()
        last_end[chosen[index]] = previous
        chosen[index] = -1
        position += 1
    given: dict[int, list[int]] = {i: [] for i in range(len(holds))}
    for (_, _, hold), u in zip(jobs, chosen, strict=True):
        given[hold].append(units[u].id)
    return Fit({i: tuple(ids) for i, ids in given.items()})


def holds_fit(
    units: Sequence[Unit],
    holds: Sequence[Interval],
    touching: Sequence[tuple[dt.datetime, dt.datetime]],
    *,
    budget: int = SEARCH_BUDGET,
) -> Fit:
    """Whether the chains of holds overlapping ``touching`` (the new bookings' spans) can all be given
    units; the other chains are not this booking's business. The assignment covers those chains only."""
    assignment: dict[int, tuple[int, ...]] = {}
    for members in components(holds, touching):
        fit = assign_units(units, [holds[i] for i in members], budget=budget)
        if fit.assignment is None:
            return fit
        assignment.update({members[k]: ids for k, ids in fit.assignment.items()})
    return Fit(assignment)


def with_booking(units: Sequence[Unit], unit_id: int, span: tuple[dt.datetime, dt.datetime]) -> list[Unit]:
    """The units with one more specific booking on ``unit_id``."""
    return [Unit(u.id, (*u.busy, span), u.out_of_service_from) if u.id == unit_id else u for u in units]


def free_for(unit: Unit, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether a unit's own bookings and service leave ``[start, end)`` free (holds aside)."""
    if unit.out_of_service_from is not None and unit.out_of_service_from < end:
        return False
    return not any(s < end and e > start for s, e in unit.busy)


# Tries per search when only telling staff what is free (counts, free resources, substitutes): a search
# that runs out says "not free", so a display may show a unit too few, never one too many, and a page never
# waits on a hard case. Booking itself decides with SEARCH_BUDGET.
PROBE_BUDGET = 300


def span_availability(
    units: Sequence[Unit],
    holds: Sequence[Interval],
    start: dt.datetime,
    end: dt.datetime,
    *,
    count: bool = True,
    budget: int = PROBE_BUDGET,
) -> tuple[int, list[int]]:
    """For ``[start, end)``: how many units one more hold could get (the largest quantity that still fits),
    and which units could be booked on their own, every hold still keeping one unit throughout.

    One search for the holds as they are; units their assignment leaves alone during the span are free
    as they stand. Then one search per further unit a hold could give up by moving, and one per open unit
    the holds use (it may be freed by moving them).
    """
    span = [(start, end)]
    base = _open_and_used(units, holds, start, end)
    if base is None:
        return 0, []
    open_units, used = base
    free_now = sum(1 for u in open_units if u.id not in used)
    found = free_now
    while (
        count
        and found < len(open_units)
        and holds_fit(units, [*holds, Interval(start, end, found + 1)], span, budget=budget).ok
    ):
        found += 1
    free = [
        u.id
        for u in open_units
        if u.id not in used or holds_fit(with_booking(units, u.id, (start, end)), holds, span, budget=budget).ok
    ]
    return found, free


def _open_and_used(
    units: Sequence[Unit], holds: Sequence[Interval], start: dt.datetime, end: dt.datetime
) -> tuple[list[Unit], set[int]] | None:
    """The units free of their own bookings for ``[start, end)``, and those of them the holds' assignment
    uses then; None when none is open or the holds here cannot all be given units as it is (promise nothing)."""
    open_units = [u for u in units if free_for(u, start, end)]
    if not open_units:
        return None
    base = holds_fit(units, holds, [(start, end)], budget=SEARCH_BUDGET)
    if base.assignment is None:
        return None
    used = {
        unit_id
        for i, ids in base.assignment.items()
        if holds[i].start < end and holds[i].end > start
        for unit_id in ids
    }
    return open_units, used


def first_free(
    units: Sequence[Unit],
    holds: Sequence[Interval],
    start: dt.datetime,
    end: dt.datetime,
    preferred: Sequence[int],
    *,
    budget: int = PROBE_BUDGET,
) -> int | None:
    """The first of ``preferred`` (unit ids) that ``span_availability`` would list as free, probing only
    as far as the first one found (a substitute needs one, not the whole list)."""
    base = _open_and_used(units, holds, start, end)
    if base is None:
        return None
    open_ids = {u.id for u in base[0]}
    for unit_id in preferred:
        if unit_id not in open_ids:
            continue
        if unit_id not in base[1]:
            return unit_id
        if holds_fit(with_booking(units, unit_id, (start, end)), holds, [(start, end)], budget=budget).ok:
            return unit_id
    return None


def unit_count_free(units: Sequence[Unit], holds: Sequence[Interval], start: dt.datetime, end: dt.datetime) -> int:
    """How many units one more hold for ``[start, end)`` could get: the largest quantity that still fits."""
    return span_availability(units, holds, start, end)[0]


def units_free(units: Sequence[Unit], holds: Sequence[Interval], start: dt.datetime, end: dt.datetime) -> list[int]:
    """The units that could be booked on their own for ``[start, end)`` with every hold still given a unit."""
    return span_availability(units, holds, start, end)[1]


# --- repeats ----------------------------------------------------------------------------------------


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


LAST = -1  # "the last day" of a month, or "the last Friday"


@dataclass(frozen=True)
class Repeat:
    """How a reservation repeats, on the center's wall clock.

    ``weekdays``: for weekly, the days ("mon" … "sun"; empty: the start's weekday); for monthly by weekday,
    exactly one. ``month_day``: monthly on a date, 1-31 or ``LAST``; 29-31 fall on the last day of
    shorter months. ``week_of_month``: monthly on a weekday, 1-5 or ``LAST`` ("the 5th Friday" skips
    months without one; "the last Friday" never does). Ends ``until`` a date (inclusive) or after
    ``count`` occurrences, whichever comes first.
    """

    frequency: Frequency
    interval: int = 1
    weekdays: tuple[str, ...] = ()
    month_day: int | None = None
    week_of_month: int | None = None
    until: dt.date | None = None
    count: int | None = None

    def rrule_text(self) -> str:
        """The rule as RFC 5545 text, kept on the series for people and calendar feeds."""
        days = ",".join(d[:2].upper() for d in self.weekdays)
        parts = [f"FREQ={self.frequency.value.upper()}", f"INTERVAL={self.interval}"]
        if self.frequency == Frequency.MONTHLY and self.week_of_month is not None:
            parts.append(f"BYDAY={self.week_of_month}{days}")
        elif days:
            parts.append(f"BYDAY={days}")
        if self.month_day is not None:
            if self.month_day > 28:
                parts.append(f"BYMONTHDAY={','.join(str(d) for d in range(28, self.month_day + 1))};BYSETPOS=-1")
            else:
                parts.append(f"BYMONTHDAY={self.month_day}")
        if self.until is not None:
            parts.append(f"UNTIL={self.until:%Y%m%d}T235959")
        if self.count is not None:
            parts.append(f"COUNT={self.count}")
        return ";".join(parts)


def repeat_errors(repeat: Repeat) -> dict[str, str]:
    """What is wrong with a repeat rule, per field (``repeat.<field>``); empty when it is fine."""
    errors: dict[str, str] = {}
    if not 1 <= repeat.interval <= 99:
        errors["interval"] = "Repeat every 1 to 99 days, weeks or months."
    if any(d not in WEEKDAYS for d in repeat.weekdays):
        errors["weekdays"] = f"Name weekdays as {', '.join(WEEKDAYS)}."
    if repeat.until is None and repeat.count is None:
        errors["until"] = "Say when the series ends: a last date or a number of occurrences."
    if repeat.count is not None and repeat.count < 1:
        errors["count"] = "Give at least 1 occurrence."
    if repeat.frequency == Frequency.MONTHLY:
        by_date = repeat.month_day is not None
        by_weekday = repeat.week_of_month is not None
        if by_date == by_weekday:
            errors["month_day"] = 'Repeat monthly either on a date (e.g. the 15th, or "last") or on a weekday.'
        elif by_date and repeat.month_day not in (*range(1, 32), LAST):
            errors["month_day"] = 'Choose a day from 1 to 31, or "last" for the last day of the month.'
        elif by_weekday:
            if repeat.week_of_month not in (1, 2, 3, 4, 5, LAST):
                errors["week_of_month"] = 'Choose the 1st to 5th, or "last", weekday of the month.'
            if len(repeat.weekdays) != 1:
                errors["weekdays"] = 'Name one weekday, as in "the last Friday".'
    elif repeat.month_day is not None or repeat.week_of_month is not None:
        errors["month_day"] = "A day of the month applies to monthly repeats only."
    return errors


def _rrule(repeat: Repeat, first: dt.datetime) -> Iterable[dt.datetime]:
    from dateutil import rrule as rr  # plain Python; imported here so the module loads fast

    codes = [rr.MO, rr.TU, rr.WE, rr.TH, rr.FR, rr.SA, rr.SU]
    freq = {Frequency.DAILY: rr.DAILY, Frequency.WEEKLY: rr.WEEKLY, Frequency.MONTHLY: rr.MONTHLY}[repeat.frequency]
    options: dict[str, object] = {"dtstart": first, "interval": repeat.interval}
    if repeat.frequency == Frequency.WEEKLY:
        options["byweekday"] = [codes[WEEKDAYS.index(d)] for d in repeat.weekdays] or [codes[first.weekday()]]
    if repeat.frequency == Frequency.MONTHLY:
        if repeat.week_of_month is not None:
            options["byweekday"] = codes[WEEKDAYS.index(repeat.weekdays[0])](repeat.week_of_month)
        elif repeat.month_day is not None and repeat.month_day > 28:
            # "The 31st" means the last day where a month is shorter: the latest of 28 to 31 that exists.
            options["bymonthday"] = tuple(range(28, repeat.month_day + 1))
            options["bysetpos"] = -1
        else:
            options["bymonthday"] = repeat.month_day
    if repeat.until is not None:
        options["until"] = dt.datetime.combine(repeat.until, dt.time(23, 59, 59))
    if repeat.count is not None:
        options["count"] = repeat.count
    return rr.rrule(freq, **options)  # type: ignore[arg-type]


def expand(
    repeat: Repeat, first: dt.datetime, length: dt.timedelta, time_zone: str, *, limit: int
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The occurrences' spans as UTC instants, at most ``limit`` of them.

    ``first`` is the first start as a naive wall-clock time in the center's zone and ``length`` the
    wall-clock length. The rule runs on naive local times, then each start and end gets the zone
    attached on its own, so 10:00 stays 10:00 across daylight-saving changes. With ``fold=0`` (the
    default) a time in the repeated autumn hour is its first occurrence, and a time skipped in spring
    is read with the offset before the gap, so it moves forward by the gap (02:30 becomes 03:30), as
    RFC 5545 §3.3.5 says.
    """
    zone = ZoneInfo(time_zone)
    spans = []
    for start in itertools.islice(_rrule(repeat, first), limit):
        spans.append(
            (start.replace(tzinfo=zone).astimezone(dt.UTC), (start + length).replace(tzinfo=zone).astimezone(dt.UTC))
        )
    return spans


SERIES_TOO_LONG = "series_too_long"
SERIES_BEYOND_HORIZON = "series_beyond_horizon"

# Reasons that are the same for every occurrence of a series: they refuse the whole series at once.
SERIES_WIDE: frozenset[str] = frozenset(
    {
        Code.END_NOT_AFTER_START,
        Code.TITLE_REQUIRED,
        Code.PICKUP_OPTION_NOT_OFFERED,
        Code.DELIVERY_LOCATION_UNKNOWN,
        Code.TOO_MANY_OPEN_RESERVATIONS,
        Code.SIGNATURE_MISSING,
    }
)


def series_reasons(
    policy: Policy, spans: Sequence[tuple[dt.datetime, dt.datetime]], now: dt.datetime, *, asked: int | None
) -> list[Reason]:
    """The center's caps on a series: how many occurrences, and how far ahead. Neither is overridable;
    a series that breaks one is refused whole rather than cut short silently."""
    found: list[Reason] = []
    if len(spans) > policy.series_max_occurrences:
        found.append(
            Reason(
                SERIES_TOO_LONG,
                f"A series here has at most {policy.series_max_occurrences} occurrences and this one has "
                f"{asked if asked is not None else 'more'}; end it earlier.",
                {"limit": str(policy.series_max_occurrences)},
            )
        )
    horizon = now + dt.timedelta(days=policy.series_horizon_days)
    beyond = [start for start, _ in spans if start > horizon]
    if beyond:
        found.append(
            Reason(
                SERIES_BEYOND_HORIZON,
                f"This center books at most {policy.series_horizon_days} days ahead; {len(beyond)} occurrence(s) "
                f"start later. End the series by {horizon:%Y-%m-%d}.",
                {"horizon_days": str(policy.series_horizon_days), "beyond": str(len(beyond))},
            )
        )
    return found
