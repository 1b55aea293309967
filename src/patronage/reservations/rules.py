"""Pure rules of reservations: the state table, the policy checks and the availability sweep.

Plain Python: facts in, answers out. No Django, no clock, no database. The values of ``State``, ``Step``
and ``Code`` are part of the public contract (pages, REST, later the portal) and never change once
released.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
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
