"""Reads shared by the reservation services and the faces: policies, counts and availability.

Availability reads busy intervals with one statement per question (never one per resource) and hands
them to the sweep in ``rules``.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection, connections, router
from django.db.backends.base.base import BaseDatabaseWrapper

from patronage.core import rows
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.resources import queries as catalog
from patronage.resources.models import Resource, ResourceType
from patronage.resources.rules import TypeNode, in_service_until, is_authorized, visible_in_portal

from . import rules
from .models import CenterPolicy, Occupancy, Reservation, ReservationEvent, ReservationLine, ReservationSeries
from .rules import Code, Interval, Reason

OPEN = [s.value for s in rules.OPEN_STATES]


_POLICY: tuple[rows.Join, ...] = ((CenterPolicy, "p"),)


def policy_for(center: Branch | int) -> rules.Policy:
    """The center's policy, or the defaults when it has none. One hand-written statement (core.rows): every
    booking page reads it, and building the read through the ORM cost more than running it."""
    center_id = center if isinstance(center, int) else center.pk

    def build(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        return (
            f"SELECT {rows.select(db, _POLICY).columns} FROM {quote(CenterPolicy._meta.db_table)} p"
            " WHERE p.center_id = %s"
        )

    db, found = rows.fetch(CenterPolicy, "reservations.policy_for", build, [center_id])
    row = rows.instances(db, db.alias, _POLICY, found[0])[0] if found else None
    return rules.Policy() if not isinstance(row, CenterPolicy) else to_policy(row)


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
    # The reservation's own span, to tell "booked" from "in the buffer": filled by ``with_spans`` for the
    # few rows that clash (reading it for every busy row cost more than the rest of the read).
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None


def bookings(
    *,
    start: dt.datetime,
    end: dt.datetime,
    center_id: int | None = None,
    type_ids: Iterable[int] | None = None,
    resource_ids: Iterable[int] | None = None,
    exclude: int | None = None,
    beyond: tuple[dt.datetime, dt.datetime] | None = None,
    within: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> list[Booking]:
    """Active occupancies overlapping ``[start, end)``, of some types at a center or of some resources.

    ``beyond``: only rows that do not overlap that (smaller) window, read before. One raw statement: this
    is the hot path of every availability question, and building it through the ORM cost more than
    running it (docs/performance.md, the lending benchmark).
    """
    adapt = connection.ops.adapt_datetimefield_value
    where = ["o.active", "o.blocked_from < %s", "o.blocked_until > %s"]
    params: list[Any] = [adapt(end), adapt(start)]
    if beyond is not None:
        where.append("(o.blocked_from >= %s OR o.blocked_until <= %s)")
        params += [adapt(beyond[1]), adapt(beyond[0])]
    if within:
        where.append("(" + " OR ".join(["(o.blocked_from < %s AND o.blocked_until > %s)"] * len(within)) + ")")
        params += [adapt(v) for s, e in within for v in (e, s)]
    if center_id is not None:
        where.append("o.center_id = %s")
        params.append(center_id)
    for column, wanted in (("o.resource_type_id", type_ids), ("o.resource_id", resource_ids)):
        if wanted is not None:
            ids = list(wanted)
            if not ids:
                return []
            where.append(f"{column} IN ({', '.join(['%s'] * len(ids))})")
            params += ids
    if exclude is not None:
        where.append("o.reservation_id <> %s")
        params.append(exclude)
    if connection.vendor == "postgresql":
        # Instants as epoch seconds: the driver turns a float into Python in C, a timestamp through a
        # regular expression, and a series reads thousands of them (the lending benchmark).
        columns = "EXTRACT(EPOCH FROM o.blocked_from)::float8, EXTRACT(EPOCH FROM o.blocked_until)::float8"
        instant: Callable[[Any], dt.datetime] = _from_epoch
    else:
        columns, instant = "o.blocked_from, o.blocked_until", _instant
    sql = (
        f"SELECT o.reservation_id, o.resource_id, o.resource_type_id, o.quantity, {columns} "
        f"FROM {Occupancy._meta.db_table} o WHERE {' AND '.join(where)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [Booking(r[0], r[1], r[2], r[3], instant(r[4]), instant(r[5])) for r in rows]


def _from_epoch(seconds: float) -> dt.datetime:
    # fromtimestamp rounds to the nearest microsecond (half to even), and the float8 nearest a stored
    # instant lies well within half a microsecond of it for any date this application sees, so the
    # instant comes back exactly (back-to-back ends stay equal) without a round() of its own.
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def with_spans(clashes: Sequence[Booking]) -> list[Booking]:
    """The clashing rows with their reservations' own spans; one statement for those still missing."""
    missing = sorted({b.reservation_id for b in clashes if b.starts_at is None})
    spans: dict[int, tuple[dt.datetime | None, dt.datetime | None]] = dict.fromkeys(missing, (None, None))
    if missing:  # by hand, as ``bookings``: the ORM's compiler cost more than the statement
        if connection.vendor == "postgresql":
            columns = "EXTRACT(EPOCH FROM starts_at)::float8, EXTRACT(EPOCH FROM ends_at)::float8"
            instant: Callable[[Any], dt.datetime] = _from_epoch
        else:
            columns, instant = "starts_at, ends_at", _instant
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, {columns} FROM {Reservation._meta.db_table} WHERE id IN ({', '.join(['%s'] * len(missing))})",
                missing,
            )
            spans.update((pk, (instant(s), instant(e))) for pk, s, e in cursor.fetchall())
    return [
        b
        if b.starts_at is not None
        else replace(b, starts_at=spans[b.reservation_id][0], ends_at=spans[b.reservation_id][1])
        for b in clashes
    ]


def _instant(value: Any) -> dt.datetime:
    """A timestamp from a raw cursor as an aware UTC datetime (SQLite hands back naive UTC ones)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


# Widenings of the window before giving up (and refusing: never overpromise). Each costs one statement
# and happens only when a type hold read sticks out of the window read so far.
MAX_WIDENINGS = 8


def _chains(
    busy: Sequence[Booking], start: dt.datetime, end: dt.datetime
) -> dict[int, tuple[dt.datetime, dt.datetime]]:
    """Per type, the span of ``[start, end)`` with the chain of that type's holds touching it."""
    holds: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {}
    for b in busy:
        if b.resource_id is None:
            holds.setdefault(b.resource_type_id, []).append((b.blocked_from, b.blocked_until))
    return {kind: rules.chain_span(spans, start, end) for kind, spans in holds.items()}


def bookings_closed(
    *,
    start: dt.datetime,
    end: dt.datetime,
    center_id: int,
    type_ids: Iterable[int],
    exclude: int | None = None,
) -> tuple[list[Booking], bool]:
    """``bookings`` of some types at a center over ``[start, end)``, widened until, for each type, the
    chain of its holds overlapping the span (holds overlapping it, holds overlapping those, …) lies inside
    the window read: the units a hold can take depend on the holds it overlaps, and theirs. One statement,
    plus one per widening; False when it stopped widening without closing (the caller refuses)."""
    types = list(type_ids)
    busy = bookings(start=start, end=end, center_id=center_id, type_ids=types, exclude=exclude)
    low, high = start, end
    for _ in range(MAX_WIDENINGS):
        chains = _chains(busy, start, end).values()
        wider = (min([low, *(s for s, _ in chains)]), max([high, *(e for _, e in chains)]))
        if wider == (low, high):
            return busy, True
        busy += bookings(
            start=wider[0], end=wider[1], center_id=center_id, type_ids=types, exclude=exclude, beyond=(low, high)
        )
        low, high = wider
    return busy, False


# Type holds are read for this far around a series' occurrences in its first statement, so the chains
# of holds touching the first and last occurrence rarely need a statement of their own.
HOLD_MARGIN = dt.timedelta(days=2)


def _read(where: Sequence[str], params: Sequence[Any]) -> list[tuple[int, Booking]]:
    """Active occupancy rows matching ``where``, with their row ids (to tell rows read twice apart)."""
    if connection.vendor == "postgresql":  # epoch seconds, as in ``bookings``
        columns = "EXTRACT(EPOCH FROM o.blocked_from)::float8, EXTRACT(EPOCH FROM o.blocked_until)::float8"
        instant: Callable[[Any], dt.datetime] = _from_epoch
    else:
        columns, instant = "o.blocked_from, o.blocked_until", _instant
    sql = (
        f"SELECT o.id, o.reservation_id, o.resource_id, o.resource_type_id, o.quantity, {columns} "
        f"FROM {Occupancy._meta.db_table} o WHERE o.active AND {' AND '.join(where)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        rows = cursor.fetchall()
    return [(r[0], Booking(r[1], r[2], r[3], r[4], instant(r[5]), instant(r[6]))) for r in rows]


def _merged(spans: Iterable[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def bookings_within(
    *, windows: Sequence[tuple[dt.datetime, dt.datetime]], center_id: int, type_ids: Iterable[int]
) -> tuple[list[Booking], bool]:
    """``bookings_closed`` for many short windows at once (a series' occurrences): every row overlapping
    a window and, per type, every row along the chain of that type's holds touching a window (holds
    overlapping it, holds overlapping those, ...), which is what the whole-span assignment weighs.

    Two statements, usually. The first reads the rows inside the windows and every type hold of the
    types from a little before the first window to a little after the last (holds are a small share of
    the rows); the chains are worked out from those holds in memory. The second reads, per type, the
    other rows along the parts of its chains outside the windows. One more statement per widening when
    a chain runs past the holds read; False when it stopped widening without closing (the caller refuses).
    Rows far from every window, and a type's rows along another type's chains, stay unread."""
    types = sorted(set(type_ids))
    if not windows or not types:
        return [], True
    adapt = connection.ops.adapt_datetimefield_value
    slices = _merged(windows)
    low, high = slices[0][0] - HOLD_MARGIN, slices[-1][1] + HOLD_MARGIN
    kinds = f"o.resource_type_id IN ({', '.join(['%s'] * len(types))})"
    near = " OR ".join(["(o.blocked_from < %s AND o.blocked_until > %s)"] * len(slices))
    found = dict(
        _read(
            ["o.center_id = %s", kinds, "o.blocked_from < %s", "o.blocked_until > %s",
             f"(o.resource_id IS NULL OR {near})"],
            [center_id, *types, adapt(high), adapt(low), *(adapt(v) for s, e in slices for v in (e, s))],
        )
    )  # fmt: skip
    closed = False
    for _ in range(MAX_WIDENINGS + 1):
        holds: dict[int, list[Booking]] = {t: [] for t in types}
        for b in found.values():
            if b.resource_id is None:
                holds[b.resource_type_id].append(b)
        chains = {t: _TypeRows(rows) for t, rows in holds.items()}
        spans = {(t, w): chains[t].chain(*w) for t in types for w in windows}
        wider = (min([low, *(s for s, _ in spans.values())]), max([high, *(e for _, e in spans.values())]))
        if wider == (low, high):
            closed = True
            break
        # A chain runs past the holds read: read the holds beyond it, with the margin again.
        wider = (wider[0] - HOLD_MARGIN if wider[0] < low else low, wider[1] + HOLD_MARGIN if wider[1] > high else high)
        found.update(
            _read(
                ["o.center_id = %s", kinds, "o.resource_id IS NULL", "o.blocked_from < %s", "o.blocked_until > %s",
                 "(o.blocked_from >= %s OR o.blocked_until <= %s)"],
                [center_id, *types, adapt(wider[1]), adapt(wider[0]), adapt(high), adapt(low)],
            )
        )  # fmt: skip
        low, high = wider
    if not closed:
        return list(found.values()), False
    # The rest of each chain: the type's specific rows between its chain's ends and the window.
    beyond = [
        (t, piece)
        for t in types
        for piece in _merged(
            piece for w in windows for piece in ((spans[t, w][0], w[0]), (w[1], spans[t, w][1])) if piece[0] < piece[1]
        )
    ]
    if beyond:
        found.update(
            _read(
                ["o.center_id = %s", kinds, "o.resource_id IS NOT NULL", "o.blocked_from < %s", "o.blocked_until > %s",
                 "(" + " OR ".join(
                     ["(o.resource_type_id = %s AND o.blocked_from < %s AND o.blocked_until > %s)"] * len(beyond)
                 ) + ")"],
                [center_id, *types, adapt(max(e for _, (_, e) in beyond)), adapt(min(s for _, (s, _) in beyond)),
                 *(v for t, (s, e) in beyond for v in (t, adapt(e), adapt(s)))],
            )
        )  # fmt: skip
    return list(found.values()), True


class _TypeRows:
    """One type's rows in a ``BusyIndex``: all of them and its holds, each sorted by start."""

    def __init__(self, rows: Iterable[Booking]) -> None:
        self.rows = sorted(rows, key=lambda b: b.blocked_from)
        self.starts = [b.blocked_from for b in self.rows]
        self.longest = max((b.blocked_until - b.blocked_from for b in self.rows), default=dt.timedelta(0))
        self.holds = [b for b in self.rows if b.resource_id is None]
        self.hold_starts = [b.blocked_from for b in self.holds]
        self.hold_longest = max((b.blocked_until - b.blocked_from for b in self.holds), default=dt.timedelta(0))
        self.added: list[Booking] = []

    def chain(self, start: dt.datetime, end: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """``rules.chain_span`` of the type's holds (added ones included) and ``[start, end)``."""
        low, high = start, end
        while True:
            near = self.overlapping(low, high, holds=True)
            wider = (min([low, *(b.blocked_from for b in near)]), max([high, *(b.blocked_until for b in near)]))
            if wider == (low, high):
                return low, high
            low, high = wider

    def overlapping(self, start: dt.datetime, end: dt.datetime, *, holds: bool = False) -> list[Booking]:
        rows, starts, longest = (
            (self.holds, self.hold_starts, self.hold_longest) if holds else (self.rows, self.starts, self.longest)
        )
        first = bisect.bisect_left(starts, start - longest)
        last = bisect.bisect_left(starts, end)
        return [b for b in rows[first:last] if b.blocked_until > start] + [
            b
            for b in self.added
            if b.blocked_from < end and b.blocked_until > start and (not holds or b.resource_id is None)
        ]


class BusyIndex:
    """Busy rows read once for a long window (a series'), by type and sorted by start, so each occurrence
    finds the rows that matter to it by bisection instead of a pass over all of them."""

    def __init__(self, rows: Sequence[Booking]) -> None:
        by_type: dict[int, list[Booking]] = {}
        for b in rows:
            by_type.setdefault(b.resource_type_id, []).append(b)
        self.types = {kind: _TypeRows(found) for kind, found in by_type.items()}

    def add(self, rows: Iterable[Booking]) -> None:
        """Rows written meanwhile (a series' accepted occurrences)."""
        for b in rows:
            if b.resource_type_id not in self.types:
                self.types[b.resource_type_id] = _TypeRows(())
            self.types[b.resource_type_id].added.append(b)

    def overlapping(self, start: dt.datetime, end: dt.datetime) -> list[Booking]:
        return [b for kind in self.types.values() for b in kind.overlapping(start, end)]

    def close_in(self, start: dt.datetime, end: dt.datetime) -> list[Booking]:
        """The rows that matter to ``[start, end)``: per type, those overlapping it or the chain of that
        type's holds touching it (as ``bookings_within`` reads them)."""
        return [b for kind in self.types.values() for b in kind.overlapping(*kind.chain(start, end))]


def unit_view(
    type_id: int,
    units: Iterable[tuple[int, int, dt.datetime | None]],
    busy: Iterable[Booking],
    extra: Iterable[tuple[int, tuple[dt.datetime, dt.datetime]]] = (),
) -> tuple[list[rules.Unit], list[Interval]]:
    """The units of one type (from ``center_units`` rows) with their specific bookings, and the type's
    holds, as ``rules.assign_units`` takes them. ``extra``: new specific bookings (resource id, span)."""
    mine = [(pk, out) for pk, kind, out in units if kind == type_id]
    own: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {pk: [] for pk, _ in mine}
    holds: list[Interval] = []
    for b in busy:
        if b.resource_type_id != type_id:
            continue
        if b.resource_id is None:
            holds.append(Interval(b.blocked_from, b.blocked_until, b.quantity))
        elif b.resource_id in own:
            own[b.resource_id].append((b.blocked_from, b.blocked_until))
    for pk, blocked in extra:
        if pk in own:
            own[pk].append(blocked)
    return [rules.Unit(pk, tuple(own[pk]), out) for pk, out in mine], holds


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
    """The answer of ``type_availability``; ``center_id``, ``busy`` and ``closed``: the center asked about and
    the closed read of the type's busy rows there (``bookings_closed``), for ``why_not_many`` to reuse."""

    resource_type: ResourceType
    blocked_from: dt.datetime
    blocked_until: dt.datetime
    free_units: int
    free_resources: list[Resource]
    center_id: int | None = None
    busy: tuple[Booking, ...] = ()
    closed: bool = False


_UNIT: tuple[rows.Join, ...] = ((Resource, "x"),)


def type_availability(
    center: Branch, resource_type: ResourceType, starts_at: dt.datetime, ends_at: dt.datetime
) -> TypeAvailability:
    """Which resources of a type are free at a center for a span (buffers included), and how many units.

    Two statements (plus one per widening, see ``bookings_closed``): the type's resources at the center,
    and the busy intervals of the type there. ``free_units`` is how many one hold could get with every
    other hold still given one unit for its whole span; a resource is free when it can be booked on its
    own with the same guarantee (``rules.unit_count_free`` / ``rules.units_free``).
    """
    start, end = rules.blocked_span(
        starts_at, ends_at, resource_type.buffer_before_minutes, resource_type.buffer_after_minutes
    )

    def build(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        return (
            f"SELECT {rows.select(db, _UNIT).columns} FROM {quote(Resource._meta.db_table)} x"
            f" WHERE x.center_id = %s AND x.resource_type_id = %s ORDER BY x.{quote('name')}, x.{quote('identifier')}"
        )

    db, found = rows.fetch(Resource, "reservations.type_units", build, [center.pk, resource_type.pk])
    resources = [r for r in (rows.instances(db, db.alias, _UNIT, row)[0] for row in found) if isinstance(r, Resource)]
    busy, closed = bookings_closed(start=start, end=end, center_id=center.pk, type_ids=[resource_type.pk])
    units, holds = unit_view(
        resource_type.pk, [(r.pk, resource_type.pk, r.out_of_service_from) for r in resources], busy
    )
    free, free_list = rules.span_availability(units, holds, start, end) if closed else (0, [])
    free_ids = set(free_list)
    return TypeAvailability(
        resource_type=resource_type,
        blocked_from=start,
        blocked_until=end,
        free_units=free,
        free_resources=[r for r in resources if r.pk in free_ids],
        center_id=center.pk,
        busy=tuple(busy),
        closed=closed,
    )


def free_resources(
    center: Branch, resource_type: ResourceType, starts_at: dt.datetime, ends_at: dt.datetime
) -> list[Resource]:
    return type_availability(center, resource_type, starts_at, ends_at).free_resources


def free_unit_count(center: Branch, resource_type: ResourceType, starts_at: dt.datetime, ends_at: dt.datetime) -> int:
    return type_availability(center, resource_type, starts_at, ends_at).free_units


def free_counts_by_type(center: Branch, starts_at: dt.datetime, ends_at: dt.datetime) -> dict[int, int]:
    """Free units of every type the center lends, for an availability-first search. Three statements
    (plus one per widening, see ``bookings_closed``)."""
    types = list(ResourceType.objects.filter(centers=center))
    units = list(
        Resource.objects.filter(center=center, resource_type__in=types).values_list(
            "pk", "resource_type_id", "out_of_service_from"
        )
    )
    widest_before = max((t.buffer_before_minutes for t in types), default=0)
    widest_after = max((t.buffer_after_minutes for t in types), default=0)
    window = rules.blocked_span(starts_at, ends_at, widest_before, widest_after)
    busy, closed = bookings_closed(start=window[0], end=window[1], center_id=center.pk, type_ids=[t.pk for t in types])
    result: dict[int, int] = {}
    for kind in types:
        start, end = rules.blocked_span(starts_at, ends_at, kind.buffer_before_minutes, kind.buffer_after_minutes)
        mine, holds = unit_view(kind.pk, units, busy)
        result[kind.pk] = rules.unit_count_free(mine, holds, start, end) if closed else 0
    return result


# --- one resource, or many at once ------------------------------------------------------------------------


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
    patron), ``resource_hidden`` (for the portal) and ``outside_open_hours``. ``why_not_many`` of one.
    """
    return why_not_many([resource], starts_at, ends_at, patron=patron, portal=portal)[resource.pk]


def _parts_of(resources: Sequence[Resource]) -> dict[int, list[Resource]]:
    """``resources.queries.with_parts`` for all of them at once: one statement per level of nesting."""
    found: dict[int, list[Resource]] = {r.pk: [] for r in resources}
    seen: dict[int, set[int]] = {r.pk: {r.pk} for r in resources}
    roots: dict[int, set[int]] = {r.pk: {r.pk} for r in resources}  # a resource's id -> the kits it is in
    level = list(roots)
    while level:
        parts = _parts_in(level)
        below: dict[int, set[int]] = {}
        for part in parts:
            assert part.contained_in_id is not None  # noqa: S101 - filtered on it
            for kit in roots.get(part.contained_in_id, ()):
                if part.pk not in seen[kit]:
                    seen[kit].add(part.pk)
                    found[kit].append(part)
                    below.setdefault(part.pk, set()).add(kit)
        roots = below
        level = list(below)
    return found


_PART: tuple[rows.Join, ...] = ((Resource, "x"), (ResourceType, "y"))


def _parts_in(container_ids: Sequence[int]) -> list[Resource]:
    """The resources directly inside these, each with its type, as ``select_related("resource_type")`` makes
    them; written by hand (core.rows), the portal's item list asks on every page."""

    def build(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        return (
            f"SELECT {rows.select(db, _PART).columns} FROM {quote(Resource._meta.db_table)} x"
            f" JOIN {quote(ResourceType._meta.db_table)} y ON y.id = x.resource_type_id"
            " WHERE x.contained_in_id IN ({marks})"
        )

    alias = router.db_for_read(Resource)
    db = connections[alias]
    sql = rows.statement(db, "reservations.parts_in", build).format(marks=", ".join(["%s"] * len(container_ids)))
    with db.cursor() as cursor:
        cursor.execute(sql, list(container_ids))
        found = cursor.fetchall()
    parts = []
    for row in found:
        part, kind = rows.instances(db, alias, _PART, row)
        assert isinstance(part, Resource)  # noqa: S101 - the statement's FROM
        Resource._meta.get_field("resource_type").set_cached_value(part, kind)
        parts.append(part)
    return parts


def _closed_in(
    rows: Sequence[Booking], start: dt.datetime, end: dt.datetime, type_ids: Iterable[int]
) -> tuple[list[Booking], bool]:
    """``bookings_closed`` answered from ``rows`` already read (a closed read over a window holding this
    one): the same rows, widened the same way."""
    types = set(type_ids)
    mine = [b for b in rows if b.resource_type_id in types]

    def overlapping(low: dt.datetime, high: dt.datetime) -> list[Booking]:
        return [b for b in mine if b.blocked_from < high and b.blocked_until > low]

    low, high = start, end
    busy = overlapping(low, high)
    for _ in range(MAX_WIDENINGS):
        chains = _chains(busy, start, end).values()
        wider = (min([low, *(s for s, _ in chains)]), max([high, *(e for _, e in chains)]))
        if wider == (low, high):
            return busy, True
        low, high = wider
        busy = overlapping(low, high)
    return busy, False


@dataclass
class _Kit:
    """One resource asked about, with its parts, their blocked spans and the rows that matter to it."""

    kit: Resource
    everything: list[Resource]
    types: dict[int, ResourceType]
    spans: dict[int, tuple[dt.datetime, dt.datetime]]
    busy: list[Booking]
    closed: bool
    clashes: dict[int, Booking]


def why_not_many(
    resources: Sequence[Resource],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    *,
    patron: Patron | None = None,
    portal: bool = False,
    policies: Mapping[int, rules.Policy] | None = None,
    type_trees: Mapping[int, Mapping[int, TypeNode]] | None = None,
    authorizations: Mapping[tuple[int, dt.date], Collection[int]] | None = None,
    read: Iterable[TypeAvailability] = (),
) -> dict[int, list[Reason]]:
    """``why_not`` for each of several resources (the portal's list of a type's items): {resource id:
    reasons}, each exactly what ``why_not`` gives for it alone.

    What ``why_not`` reads is read once for all of them, so the number of statements does not grow with the
    number of resources: per center its policy, per library its type tree and the patron's authorizations,
    the kits' parts (one statement per level of nesting), the busy rows of every type involved over the
    widest span (widened as ``bookings_closed`` does), the spans of the reservations that clash, and the
    center's units. Each resource is then judged on the rows its own question would have read. ``policies``:
    centers' policies the caller has already read ({center id: policy}), not read again; likewise
    ``type_trees`` ({library id: its whole type tree, as ``type_nodes``}) and ``authorizations`` ({(patron
    id, day): the types the patron's authorizations valid that day cover, as ``authorized_type_ids``}).
    ``read``: ``type_availability`` answers the caller has; the busy rows of one asks the same read of (a
    type's items without parts, at its center, over its blocked span) are taken from it.
    """
    result: dict[int, list[Reason]] = {r.pk: [] for r in resources}
    if not resources:
        return result
    parts = _parts_of(resources)
    by_center: dict[int, list[Resource]] = {}
    for resource in resources:
        by_center.setdefault(resource.center_id, []).append(resource)
    nodes: dict[int, Mapping[int, TypeNode]] = dict(type_trees or {})
    authorized: dict[tuple[int, dt.date], Collection[int]] = dict(authorizations or {})
    for center_id, kits in by_center.items():
        center = kits[0].center
        library = center.library
        zone = ZoneInfo(library.time_zone)
        policy = policies[center_id] if policies and center_id in policies else policy_for(center)
        closed_at = [
            Reason(Code.OUTSIDE_OPEN_HOURS, f"The center is closed at the {which} time.", {"which": which})
            for which, instant in (("pickup", starts_at), ("return", ends_at))
            if not rules.is_open_at(policy.open_hours, instant.astimezone(zone))
        ]
        for kit in kits:
            if kit.library_id not in nodes:
                nodes[kit.library_id] = catalog.type_nodes(kit.library_id)
        day = starts_at.astimezone(zone).date()
        if patron is not None and (patron.pk, day) not in authorized:
            authorized[patron.pk, day] = catalog.authorized_type_ids(patron.pk, day)
        mine = authorized.get((patron.pk, day), set()) if patron is not None else set()
        judged = [_judge_kit(kit, parts[kit.pk], starts_at, ends_at) for kit in kits]
        all_types = {t: kind for k in judged for t, kind in k.types.items()}
        window = (
            min(s for k in judged for s, _ in k.spans.values()),
            max(e for k in judged for _, e in k.spans.values()),
        )
        known = next(
            (
                (list(a.busy), a.closed)
                for a in read
                if a.center_id == center_id
                and {a.resource_type.pk} == set(all_types)
                and (a.blocked_from, a.blocked_until) == window
            ),
            None,
        )
        busy, closed = known or bookings_closed(
            start=window[0], end=window[1], center_id=center_id, type_ids=list(all_types)
        )
        # Kits of the same types over the same window (a type's items, with no parts) get the same rows: each
        # distinct question is answered once, with its rows by resource.
        answers: dict[tuple[Any, ...], tuple[list[Booking], bool, dict[int | None, list[Booking]]]] = {}
        for k in judged:
            kit_window = (min(s for s, _ in k.spans.values()), max(e for _, e in k.spans.values()))
            question = (kit_window, frozenset(k.types))
            if question not in answers:
                if closed:
                    rows, rows_closed = _closed_in(busy, *kit_window, k.types)
                else:  # the shared read gave up widening: this kit's own read may not (rare)
                    rows, rows_closed = bookings_closed(
                        start=kit_window[0], end=kit_window[1], center_id=center_id, type_ids=list(k.types)
                    )
                by_resource: dict[int | None, list[Booking]] = {}
                for b in rows:
                    by_resource.setdefault(b.resource_id, []).append(b)
                answers[question] = (rows, rows_closed, by_resource)
            k.busy, k.closed, of_resource = answers[question]
            for item in k.everything:
                pk = item.pk
                start, end = k.spans[pk]
                clashes = [b for b in of_resource.get(pk, ()) if b.blocked_from < end and b.blocked_until > start]
                if clashes:
                    k.clashes[pk] = min(clashes, key=lambda b: (b.blocked_from, b.reservation_id))
        # The reservations' own spans (booked or only in the buffer), one statement for every clash.
        filled = {b.reservation_id: b for b in with_spans([b for k in judged for b in k.clashes.values()])}
        units: list[tuple[int, int, dt.datetime | None]] | None = None
        for k in judged:
            found = list(closed_at)
            kit = k.kit
            for item in k.everything:
                label = str(item) if item is kit else f"{item}, part of {kit}"
                if not in_service_until(item.out_of_service_from, k.spans[item.pk][1]):
                    found.append(
                        Reason(
                            Code.RESOURCE_OUT_OF_SERVICE, f"{label} is out of service.", {"resource_id": str(item.pk)}
                        )
                    )
                if item.pk in k.clashes:
                    clash = filled[k.clashes[item.pk].reservation_id]
                    found.append(conflict_reason(label, item.pk, clash, starts_at, ends_at, library.time_zone))
                # Parts go with the kit: the kit's type decides whether the portal may book them.
                if portal and item is kit and not visible_in_portal(kit.resource_type_id, nodes[kit.library_id]):
                    found.append(Reason(Code.RESOURCE_HIDDEN, f"{label} cannot be reserved in the portal."))
                if patron is not None and not is_authorized(item.resource_type_id, nodes[kit.library_id], mine):
                    found.append(
                        Reason(
                            Code.NOT_AUTHORIZED_FOR_RESOURCE_TYPE,
                            f"{k.types[item.resource_type_id].name} needs an authorization the patron does not hold.",
                            {"resource_type_id": str(item.resource_type_id)},
                        )
                    )
            blocking = {Code.RESOURCE_BOOKED, Code.RESOURCE_BUFFER, Code.RESOURCE_OUT_OF_SERVICE}
            if not any(r.code in blocking for r in found):
                if units is None:
                    units = catalog.center_units(center_id, all_types)
                for type_id, kind in k.types.items():
                    new = [(i.pk, k.spans[i.pk]) for i in k.everything if i.resource_type_id == type_id]
                    held, holds = unit_view(type_id, units, k.busy, new)
                    if not k.closed or not rules.holds_fit(held, holds, [s for _, s in new]).ok:
                        found.append(
                            Reason(
                                Code.TYPE_UNITS_UNAVAILABLE,
                                f"Every {kind.name} unit is already promised for this time.",
                                {"resource_type_id": str(type_id)},
                            )
                        )
            result[kit.pk] = found
    return result


def _judge_kit(kit: Resource, parts: list[Resource], starts_at: dt.datetime, ends_at: dt.datetime) -> _Kit:
    """A kit with its parts and each one's blocked span (the wider of its own and the kit's buffers)."""
    everything = [kit, *parts]
    types = {r.resource_type_id: r.resource_type for r in everything}
    spans: dict[int, tuple[dt.datetime, dt.datetime]] = {}
    for item in everything:
        kind = types[item.resource_type_id]
        before = max(kind.buffer_before_minutes, kit.resource_type.buffer_before_minutes)
        after = max(kind.buffer_after_minutes, kit.resource_type.buffer_after_minutes)
        spans[item.pk] = rules.blocked_span(starts_at, ends_at, before, after)
    return _Kit(kit, everything, types, spans, [], False, {})


def conflict_reason(
    label: str, resource_id: int, clash: Booking, starts_at: dt.datetime, ends_at: dt.datetime, time_zone: str
) -> Reason:
    """``resource_booked`` when the two bookings themselves overlap, ``resource_buffer`` when only a buffer does."""
    zone = ZoneInfo(time_zone)
    if clash.starts_at is None or clash.ends_at is None:
        clash = with_spans([clash])[0]
    assert clash.starts_at is not None  # noqa: S101 - filled just above
    assert clash.ends_at is not None  # noqa: S101 - filled just above
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


# --- the portal's own reservations: hand-written reads (core.rows) for the dashboard and the reservation page ---

_UPCOMING: tuple[rows.Join, ...] = (
    (Reservation, "r"), (Branch, "c"), (ReservationLine, "n"), (Resource, "x"), (ResourceType, "y"),
)  # fmt: skip
_LINE: tuple[rows.Join, ...] = ((ReservationLine, "n"), (Resource, "x"), (ResourceType, "y"))
ReservationWithLines = tuple[Reservation, list[ReservationLine]]


def _line_joins(db: BaseDatabaseWrapper) -> str:
    quote = db.ops.quote_name
    return (
        f" LEFT JOIN {quote(Resource._meta.db_table)} x ON x.id = n.resource_id"
        f" LEFT JOIN {quote(ResourceType._meta.db_table)} y ON y.id = n.resource_type_id"
    )


def _cache_line(line: ReservationLine, resource: Any, resource_type: Any) -> None:
    ReservationLine._meta.get_field("resource").set_cached_value(line, resource)
    ReservationLine._meta.get_field("resource_type").set_cached_value(line, resource_type)


def patron_reservations_with_lines(patron_id: int, states: Sequence[str], limit: int) -> list[ReservationWithLines]:
    """The patron's reservations in ``states``, soonest first (at most ``limit``), each with its center and its
    lines (with resource and type) by id, in one statement."""

    def build(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        marks = ", ".join(["%s"] * len(states))
        return (
            f"SELECT {rows.select(db, _UPCOMING).columns}"
            f" FROM (SELECT * FROM {quote(Reservation._meta.db_table)} WHERE patron_id = %s AND state IN ({marks})"
            " ORDER BY starts_at, id LIMIT %s) r"
            f" JOIN {quote(Branch._meta.db_table)} c ON c.id = r.center_id"
            f" LEFT JOIN {quote(ReservationLine._meta.db_table)} n ON n.reservation_id = r.id"
            f"{_line_joins(db)} ORDER BY r.starts_at, r.id, n.id"
        )

    db, found = rows.fetch(Reservation, ("portal-reservations", len(states)), build, [patron_id, *states, limit])
    result: list[ReservationWithLines] = []
    for row in found:
        reservation, center, line, resource, resource_type = rows.instances(db, db.alias, _UPCOMING, row)
        assert isinstance(reservation, Reservation)  # noqa: S101 - the statement's FROM
        if not result or result[-1][0].pk != reservation.pk:
            Reservation._meta.get_field("center").set_cached_value(reservation, center)
            result.append((reservation, []))
        if isinstance(line, ReservationLine):
            _cache_line(line, resource, resource_type)
            result[-1][1].append(line)
    return result


def portal_settings(center_id: int) -> tuple[str, bool, bool] | None:
    """The center's portal message (as stored) and whether it offers problem reports and the calendar feed;
    None without a policy row."""

    def build(db: BaseDatabaseWrapper) -> str:
        return (
            "SELECT portal_message, problem_reports_enabled, calendar_feed_enabled"
            f" FROM {db.ops.quote_name(CenterPolicy._meta.db_table)} WHERE center_id = %s"
        )

    _, found = rows.fetch(CenterPolicy, "portal-settings", build, [center_id])
    return (found[0][0], bool(found[0][1]), bool(found[0][2])) if found else None


@dataclass(frozen=True)
class OwnReservation:
    """What the patron's reservation page shows: the reservation (with center and series), its lines, its
    events, the id of its checkout (if picked up) and how many of its series' open occurrences come later."""

    reservation: Reservation
    lines: list[ReservationLine]
    events: list[ReservationEvent]
    checkout_id: int | None
    later: int


_OWN: tuple[rows.Join, ...] = ((Reservation, "r"), (Branch, "c"), (ReservationSeries, "s"))


def own_reservation_page(reservation_id: int, patron_id: int, library_id: int) -> OwnReservation | None:
    """The reservation ``reservation_id`` if it is this patron's at this library (else None), with what its
    page shows, in three statements."""

    def build(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        table = quote(Reservation._meta.db_table)
        marks = ", ".join(["%s"] * len(OPEN_PORTAL_STATES))
        # The checkout is circulation's, found through the one-to-one relation it declares to the reservation.
        checkout = Reservation.checkout.related.field.model._meta.db_table
        return (
            f"SELECT {rows.select(db, _OWN).columns},"
            f" (SELECT k.id FROM {quote(checkout)} k WHERE k.reservation_id = r.id"
            "  ORDER BY k.checked_out_at, k.id LIMIT 1),"
            f" (SELECT COUNT(*) FROM {table} o WHERE r.series_id IS NOT NULL AND o.series_id = r.series_id"
            f"  AND o.starts_at > r.starts_at AND o.state IN ({marks}))"
            f" FROM {table} r JOIN {quote(Branch._meta.db_table)} c ON c.id = r.center_id"
            f" LEFT JOIN {quote(ReservationSeries._meta.db_table)} s ON s.id = r.series_id"
            " WHERE r.id = %s AND r.patron_id = %s AND r.library_id = %s"
        )

    def build_lines(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        return (
            f"SELECT {rows.select(db, _LINE).columns} FROM {quote(ReservationLine._meta.db_table)} n"
            f"{_line_joins(db)} WHERE n.reservation_id = %s ORDER BY n.id"
        )

    def build_events(db: BaseDatabaseWrapper) -> str:
        quote = db.ops.quote_name
        return (
            f"SELECT {rows.select(db, ((ReservationEvent, 'e'),)).columns}"
            f" FROM {quote(ReservationEvent._meta.db_table)} e WHERE e.reservation_id = %s ORDER BY e.at, e.id"
        )

    alias = router.db_for_read(Reservation)
    db = connections[alias]
    with db.cursor() as cursor:
        cursor.execute(
            rows.statement(db, "portal-own-reservation", build),
            [*OPEN_PORTAL_STATES, reservation_id, patron_id, library_id],
        )
        head = cursor.fetchone()
        if head is None:
            return None
        reservation, center, series = rows.instances(db, alias, _OWN, head[:-2])
        assert isinstance(reservation, Reservation)  # noqa: S101 - the statement's FROM
        Reservation._meta.get_field("center").set_cached_value(reservation, center)
        Reservation._meta.get_field("series").set_cached_value(reservation, series)
        cursor.execute(rows.statement(db, "portal-own-lines", build_lines), [reservation.pk])
        lines = []
        for row in cursor.fetchall():
            line, resource, resource_type = rows.instances(db, alias, _LINE, row)
            assert isinstance(line, ReservationLine)  # noqa: S101 - the statement's FROM
            _cache_line(line, resource, resource_type)
            lines.append(line)
        cursor.execute(rows.statement(db, "portal-own-events", build_events), [reservation.pk])
        events = [rows.instances(db, alias, ((ReservationEvent, "e"),), row)[0] for row in cursor.fetchall()]
    return OwnReservation(
        reservation, lines, [e for e in events if isinstance(e, ReservationEvent)], head[-2], int(head[-1])
    )


OPEN_PORTAL_STATES = (rules.State.PENDING_APPROVAL.value, rules.State.RESERVED.value)
