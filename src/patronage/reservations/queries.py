"""Reads shared by the reservation services and the faces: policies, counts and availability.

Availability reads busy intervals with one statement per question (never one per resource) and hands
them to the sweep in ``rules``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.resources import queries as catalog
from patronage.resources.models import Resource, ResourceType
from patronage.resources.rules import in_service_until, is_authorized, visible_in_portal

from . import rules
from .models import CenterPolicy, Occupancy, Reservation
from .rules import Code, Interval, Reason

OPEN = [s.value for s in rules.OPEN_STATES]


def policy_for(center: Branch | int) -> rules.Policy:
    """The center's policy, or the defaults when it has none."""
    center_id = center if isinstance(center, int) else center.pk
    row = CenterPolicy.objects.filter(center_id=center_id).first()
    return rules.Policy() if row is None else to_policy(row)


def to_policy(row: CenterPolicy) -> rules.Policy:
    return rules.Policy(
        min_lead_minutes=row.min_lead_minutes,
        max_duration_minutes=row.max_duration_minutes,
        max_open_reservations=row.max_open_reservations,
        approval_required=row.approval_required,
        title_required=row.title_required,
        desk_pickup=row.desk_pickup,
        delivery_locations=tuple(row.delivery_locations or ()),
        signature_required=row.signature_required,
        series_horizon_days=row.series_horizon_days,
        series_max_occurrences=row.series_max_occurrences,
        open_hours=rules.parse_open_hours(row.open_hours),
        no_show_minutes=row.no_show_minutes,
        overdue_fee=row.overdue_fee,
        overdue_grace_minutes=row.overdue_grace_minutes,
    )


def open_reservation_count(patron_id: int, center_id: int, *, exclude: int | None = None) -> int:
    """Open reservations (pending ones and every occurrence of a series included) at one center."""
    rows = Reservation.objects.filter(patron_id=patron_id, center_id=center_id, state__in=OPEN)
    if exclude is not None:
        rows = rows.exclude(pk=exclude)
    return rows.count()


def open_reservations_by_patron(patron_id: int) -> int:
    return Reservation.objects.filter(patron_id=patron_id, state__in=OPEN).count()


@dataclass(frozen=True)
class Booking:
    """An active occupancy as availability sees it."""

    reservation_id: int
    resource_id: int | None
    resource_type_id: int
    quantity: int
    blocked_from: dt.datetime
    blocked_until: dt.datetime
    starts_at: dt.datetime  # the reservation's own span, to tell "booked" from "in the buffer"
    ends_at: dt.datetime


_BOOKING_FIELDS = (
    "reservation_id", "resource_id", "resource_type_id", "quantity", "blocked_from", "blocked_until",
    "reservation__starts_at", "reservation__ends_at",
)  # fmt: skip


def bookings(
    *,
    start: dt.datetime,
    end: dt.datetime,
    center_id: int | None = None,
    type_ids: Iterable[int] | None = None,
    resource_ids: Iterable[int] | None = None,
    exclude: int | None = None,
) -> list[Booking]:
    """Active occupancies overlapping ``[start, end)``, of some types at a center or of some resources."""
    rows = Occupancy.objects.filter(active=True, blocked_from__lt=end, blocked_until__gt=start)
    if center_id is not None:
        rows = rows.filter(center_id=center_id)
    if type_ids is not None:
        rows = rows.filter(resource_type_id__in=list(type_ids))
    if resource_ids is not None:
        rows = rows.filter(resource_id__in=list(resource_ids))
    if exclude is not None:
        rows = rows.exclude(reservation_id=exclude)
    return [Booking(*row) for row in rows.values_list(*_BOOKING_FIELDS)]


def holders(resource_ids: Sequence[int], after: dt.datetime) -> dict[int, list[int]]:
    """For the catalog: the open reservations that hold each resource at or after ``after``."""
    found: dict[int, list[int]] = {}
    rows = Occupancy.objects.filter(resource_id__in=list(resource_ids), active=True, blocked_until__gt=after)
    for resource_id, reservation_id in rows.values_list("resource_id", "reservation_id").distinct():
        found.setdefault(resource_id, []).append(reservation_id)
    return found


# --- one type at one center -------------------------------------------------------------------------


@dataclass(frozen=True)
class TypeAvailability:
    resource_type: ResourceType
    blocked_from: dt.datetime
    blocked_until: dt.datetime
    free_units: int
    free_resources: list[Resource]


def type_availability(
    center: Branch, resource_type: ResourceType, starts_at: dt.datetime, ends_at: dt.datetime
) -> TypeAvailability:
    """Which resources of a type are free at a center for a span (buffers included), and how many units.

    Two statements: the type's resources at the center, and the busy intervals of the type there. A
    resource is free when nothing blocks it and the type still has a unit left once the holds for "one of
    this type" are counted.
    """
    start, end = rules.blocked_span(
        starts_at, ends_at, resource_type.buffer_before_minutes, resource_type.buffer_after_minutes
    )
    units = [
        r
        for r in Resource.objects.filter(center=center, resource_type=resource_type).order_by("name", "identifier")
        if in_service_until(r.out_of_service_from, end)
    ]
    in_service = {r.pk for r in units}
    busy = bookings(start=start, end=end, center_id=center.pk, type_ids=[resource_type.pk])
    counted = [
        Interval(b.blocked_from, b.blocked_until, b.quantity)
        for b in busy
        if b.resource_id is None or b.resource_id in in_service
    ]
    free = rules.free_units(len(units), counted, start, end)
    taken = {b.resource_id for b in busy if b.resource_id is not None}
    return TypeAvailability(
        resource_type=resource_type,
        blocked_from=start,
        blocked_until=end,
        free_units=free,
        free_resources=[r for r in units if r.pk not in taken] if free else [],
    )


def free_resources(
    center: Branch, resource_type: ResourceType, starts_at: dt.datetime, ends_at: dt.datetime
) -> list[Resource]:
    return type_availability(center, resource_type, starts_at, ends_at).free_resources


def free_unit_count(center: Branch, resource_type: ResourceType, starts_at: dt.datetime, ends_at: dt.datetime) -> int:
    return type_availability(center, resource_type, starts_at, ends_at).free_units


def free_counts_by_type(center: Branch, starts_at: dt.datetime, ends_at: dt.datetime) -> dict[int, int]:
    """Free units of every type the center lends, for an availability-first search. Three statements."""
    types = list(ResourceType.objects.filter(centers=center))
    units = Resource.objects.filter(center=center, resource_type__in=types).values_list(
        "pk", "resource_type_id", "out_of_service_from"
    )
    widest_before = max((t.buffer_before_minutes for t in types), default=0)
    widest_after = max((t.buffer_after_minutes for t in types), default=0)
    window = rules.blocked_span(starts_at, ends_at, widest_before, widest_after)
    busy = bookings(start=window[0], end=window[1], center_id=center.pk, type_ids=[t.pk for t in types])
    result: dict[int, int] = {}
    for kind in types:
        start, end = rules.blocked_span(starts_at, ends_at, kind.buffer_before_minutes, kind.buffer_after_minutes)
        in_service = {pk for pk, type_id, out in units if type_id == kind.pk and in_service_until(out, end)}
        counted = [
            Interval(b.blocked_from, b.blocked_until, b.quantity)
            for b in busy
            if b.resource_type_id == kind.pk
            and b.blocked_from < end
            and b.blocked_until > start
            and (b.resource_id is None or b.resource_id in in_service)
        ]
        result[kind.pk] = rules.free_units(len(in_service), counted, start, end)
    return result


# --- one resource ---------------------------------------------------------------------------------------


def why_not(
    resource: Resource,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    *,
    patron: Patron | None = None,
    portal: bool = False,
) -> list[Reason]:
    """Why a specific resource (a kit with its parts) cannot be booked for a span; empty when it can.

    Codes: ``resource_booked``, ``resource_buffer``, ``resource_out_of_service``, ``type_units_unavailable``
    (every unit is promised to "one of this type" holds), ``not_authorized_for_resource_type`` (with a
    patron), ``resource_hidden`` (for the portal) and ``outside_open_hours``.
    """
    center = resource.center
    library = center.library
    policy = policy_for(center)
    found: list[Reason] = []
    for which, instant in (("pickup", starts_at), ("return", ends_at)):
        if not rules.is_open_at(policy.open_hours, instant.astimezone(ZoneInfo(library.time_zone))):
            found.append(
                Reason(Code.OUTSIDE_OPEN_HOURS, f"The center is closed at the {which} time.", {"which": which})
            )
    nodes = catalog.type_nodes(resource.library_id)
    authorized: set[int] = set()
    if patron is not None:
        authorized = catalog.authorized_type_ids(patron.pk, starts_at.astimezone(ZoneInfo(library.time_zone)).date())
    kit = resource
    everything = [kit, *catalog.with_parts([kit])[kit.pk]]
    types = {r.resource_type_id: r.resource_type for r in everything}
    spans: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    for item in everything:
        kind = types[item.resource_type_id]
        before = max(kind.buffer_before_minutes, kit.resource_type.buffer_before_minutes)
        after = max(kind.buffer_after_minutes, kit.resource_type.buffer_after_minutes)
        spans[item.pk] = rules.blocked_span(starts_at, ends_at, before, after)
    window = (min(s for s, _ in spans.values()), max(e for _, e in spans.values()))
    busy = bookings(start=window[0], end=window[1], center_id=center.pk, type_ids=list(types))
    for item in everything:
        label = str(item) if item is kit else f"{item}, part of {kit}"
        start, end = spans[item.pk]
        if not in_service_until(item.out_of_service_from, end):
            found.append(
                Reason(Code.RESOURCE_OUT_OF_SERVICE, f"{label} is out of service.", {"resource_id": str(item.pk)})
            )
        clash = next(
            (b for b in busy if b.resource_id == item.pk and b.blocked_from < end and b.blocked_until > start), None
        )
        if clash is not None:
            found.append(conflict_reason(label, item.pk, clash, starts_at, ends_at, library.time_zone))
        if portal and not visible_in_portal(item.resource_type_id, nodes):
            found.append(Reason(Code.RESOURCE_HIDDEN, f"{label} cannot be reserved in the portal."))
        if patron is not None and not is_authorized(item.resource_type_id, nodes, authorized):
            found.append(
                Reason(
                    Code.NOT_AUTHORIZED_FOR_RESOURCE_TYPE,
                    f"{types[item.resource_type_id].name} needs an authorization the patron does not hold.",
                    {"resource_type_id": str(item.resource_type_id)},
                )
            )
    if not any(r.code in {Code.RESOURCE_BOOKED, Code.RESOURCE_BUFFER, Code.RESOURCE_OUT_OF_SERVICE} for r in found):
        units = catalog.center_units(center.pk, types)
        for type_id, kind in types.items():
            new = [Interval(*spans[i.pk]) for i in everything if i.resource_type_id == type_id]
            end = max(iv.end for iv in new)
            in_service = {pk for pk, t, out in units if t == type_id and in_service_until(out, end)}
            counted = [
                Interval(b.blocked_from, b.blocked_until, b.quantity)
                for b in busy
                if b.resource_type_id == type_id and (b.resource_id is None or b.resource_id in in_service)
            ]
            if rules.peak_during(counted, new) > len(in_service):
                found.append(
                    Reason(
                        Code.TYPE_UNITS_UNAVAILABLE,
                        f"Every {kind.name} unit is already promised for this time.",
                        {"resource_type_id": str(type_id)},
                    )
                )
    return found


def conflict_reason(
    label: str, resource_id: int, clash: Booking, starts_at: dt.datetime, ends_at: dt.datetime, time_zone: str
) -> Reason:
    """``resource_booked`` when the two bookings themselves overlap, ``resource_buffer`` when only a buffer does."""
    zone = ZoneInfo(time_zone)
    other = f"{clash.starts_at.astimezone(zone):%Y-%m-%d %H:%M}-{clash.ends_at.astimezone(zone):%H:%M}"
    details = {"resource_id": str(resource_id)}
    if clash.starts_at < ends_at and clash.ends_at > starts_at:
        return Reason(Code.RESOURCE_BOOKED, f"{label} is booked {other}; choose another time or resource.", details)
    return Reason(
        Code.RESOURCE_BUFFER,
        f"{label} is booked {other} and needs its preparation time between bookings; move the time a little "
        "or choose another resource.",
        details,
    )
