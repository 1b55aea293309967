"""The only code that changes reservations: create, edit, approve, reject, cancel, and center policies.

Each function is keyword-only, runs in one transaction and records one audit event. Rule refusals list
every reason at once (``Refused`` with stable codes); staff with the override permission may override
the policy and standing reasons, never availability, with a comment that is kept.

No double booking: every write that adds or re-validates occupancy rows first locks the patron's row
and then the rows of every resource type involved, in id order (so two writers never wait on each other
in a circle), and checks availability under those locks. On SQLite the transaction already holds the
database's write lock from BEGIN (IMMEDIATE mode). On PostgreSQL an exclusion constraint also refuses
overlapping rows for one resource, whatever path wrote them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef

from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError, PermissionDenied, Refused, ValidationFailed
from patronage.core.html import clean_html
from patronage.core.money import parse_amount
from patronage.core.values import flag
from patronage.libraries.access import has_permission
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.resources import queries as catalog
from patronage.resources.models import Authorization, Resource, ResourceType
from patronage.resources.rules import (
    authorization_valid_on,
    in_service_until,
    is_authorized,
    requires_authorization,
    visible_in_portal,
)
from patronage.standing import services as standing
from patronage.standing.rules import Action

from . import queries, rules
from .models import CenterPolicy, Occupancy, Reservation, ReservationEvent, ReservationLine, ReservationSeries
from .rules import Code, Interval, Reason, State, Step

MAX_QUANTITY = 50
TITLE_MAX = 200
NOTE_MAX = 2000
LOCATION_MAX = 200
COMMENT_MAX = 2000

_DONE = {
    Step.APPROVE: "approved",
    Step.REJECT: "rejected",
    Step.CANCEL: "cancelled",
    Step.CHECK_OUT: "checked out",
    Step.MARK_NO_SHOW: "marked as a no-show",
    Step.CHECK_IN: "checked in",
}


# --- input ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRequest:
    """One line as asked: a specific resource, or ``quantity`` units of a type."""

    resource: Resource | None = None
    resource_type: ResourceType | None = None
    quantity: int = 1


def _text(value: object, field: str, max_length: int, *, required: bool = False) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise FieldError(field, "This field is required; say why.")
    if len(text) > max_length:
        raise FieldError(field, f"Use at most {max_length} characters (this has {len(text)}).")
    return text


def parse_instant(value: object, field: str, time_zone: str) -> dt.datetime:
    """An instant (UTC) from an aware datetime, an ISO text, or a wall-clock time at the center (naive)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise FieldError(field, "Give a date and time such as 2027-03-01 09:00.") from None
    if not isinstance(value, dt.datetime):
        raise FieldError(field, "Give a date and time such as 2027-03-01 09:00.")
    if value.tzinfo is None:
        zone = ZoneInfo(time_zone)
        local = value.replace(tzinfo=zone)
        # A wall-clock time skipped by a daylight-saving change does not survive the round trip.
        if local.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None) != value:
            raise FieldError(
                field, f"{value:%Y-%m-%d %H:%M} does not exist in {time_zone} (the clocks jump); choose another time."
            )
        value = local
    return value.astimezone(dt.UTC)


def check_span(starts_at: dt.datetime, ends_at: dt.datetime, *, end_field: str = "ends_at") -> None:
    """A time span asked about (availability) must end after it starts."""
    if ends_at <= starts_at:
        raise FieldError(end_field, "The end must be after the start.")


def _pk(value: object) -> int | None:
    if hasattr(value, "pk"):
        value = value.pk
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isdigit() else None


def clean_lines(library: Library, lines: Iterable[Mapping[str, Any] | LineRequest]) -> list[LineRequest]:
    """Lines from the request: each names a resource, or a type with a quantity, of ``library``."""
    raw = [line if isinstance(line, Mapping) else vars(line) for line in lines]
    if not raw:
        raise FieldError("lines", "Add at least one resource or resource type.")
    errors: dict[str, list[str]] = {}
    resource_ids = [_pk(line.get("resource")) for line in raw]
    type_ids = [_pk(line.get("resource_type")) for line in raw]
    resources = Resource.objects.select_related("resource_type").in_bulk([i for i in resource_ids if i])
    types = ResourceType.objects.in_bulk([i for i in type_ids if i])
    cleaned: list[LineRequest] = []
    for index, line in enumerate(raw):
        prefix = f"lines.{index}."
        has_resource = line.get("resource") not in (None, "")
        has_type = line.get("resource_type") not in (None, "")
        if has_resource == has_type:
            errors[prefix + "resource"] = ['Name either a resource or a resource type ("one of this type"), not both.']
            continue
        if has_resource:
            resource = resources.get(resource_ids[index] or -1)
            if resource is None or resource.library_id != library.pk:
                errors[prefix + "resource"] = [f"Unknown resource at {library.name}; choose one from the list."]
                continue
            if str(line.get("quantity") or 1).strip() != "1":
                errors[prefix + "quantity"] = ["A specific resource is booked once; leave the quantity at 1."]
                continue
            cleaned.append(LineRequest(resource=resource))
            continue
        kind = types.get(type_ids[index] or -1)
        if kind is None or kind.library_id != library.pk:
            errors[prefix + "resource_type"] = [f"Unknown resource type at {library.name}; choose one from the list."]
            continue
        quantity = str(line.get("quantity") if line.get("quantity") is not None else 1).strip()
        if not quantity.isdigit() or not 1 <= int(quantity) <= MAX_QUANTITY:
            errors[prefix + "quantity"] = [f"Enter how many, a whole number from 1 to {MAX_QUANTITY}."]
            continue
        cleaned.append(LineRequest(resource_type=kind, quantity=int(quantity)))
    if errors:
        raise ValidationFailed(errors)
    return cleaned


# --- planning: what a reservation would occupy -----------------------------------------------------


@dataclass(frozen=True)
class _Hold:
    """One occupancy row to write: a resource (maybe a kit's part) or units of a type."""

    line: int
    resource: Resource | None
    resource_type: ResourceType
    quantity: int
    blocked_from: dt.datetime
    blocked_until: dt.datetime
    label: str


def _plan(
    lines: Sequence[LineRequest],
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    parts: Mapping[int, list[Resource]] | None = None,
) -> list[_Hold]:
    """The occupancy rows for the lines. A kit books its parts; each part keeps the wider of its own and
    the kit's buffers. Raises when one resource would be booked twice by the same reservation.
    ``parts`` (the kits' parts) may be given, read once for every occurrence of a series."""
    if parts is None:
        parts = catalog.with_parts([line.resource for line in lines if line.resource is not None])
    holds: list[_Hold] = []
    seen: dict[int, str] = {}
    for index, line in enumerate(lines):
        if line.resource is None:
            kind = line.resource_type
            assert kind is not None  # noqa: S101 - clean_lines gives one or the other
            span = rules.blocked_span(starts_at, ends_at, kind.buffer_before_minutes, kind.buffer_after_minutes)
            holds.append(_Hold(index, None, kind, line.quantity, *span, f"{line.quantity} x {kind.name}"))
            continue
        kit = line.resource
        for item in [kit, *parts[kit.pk]]:
            label = str(item) if item is kit else f"{item}, part of {kit}"
            if item.pk in seen:
                raise FieldError(
                    f"lines.{index}.resource",
                    f"{label} is already in this reservation ({seen[item.pk]}); list it once.",
                )
            seen[item.pk] = label
            kind = item.resource_type
            before = max(kind.buffer_before_minutes, kit.resource_type.buffer_before_minutes)
            after = max(kind.buffer_after_minutes, kit.resource_type.buffer_after_minutes)
            holds.append(_Hold(index, item, kind, 1, *rules.blocked_span(starts_at, ends_at, before, after), label))
    return holds


def _parts(resources: Sequence[Resource]) -> dict[int, list[Resource]]:
    """``catalog.with_parts`` for several resources at once: one statement per level of nesting for all
    of them (one in all when none is a kit), rather than one per level per resource."""
    found: dict[int, list[Resource]] = {r.pk: [] for r in resources}
    seen = {r.pk: {r.pk} for r in resources}
    level = [(r.pk, r.pk) for r in resources]  # (the resource asked for, a resource inside it read last)
    while level:
        children: dict[int, list[Resource]] = {}
        rows = Resource.objects.filter(contained_in_id__in={pk for _, pk in level}).select_related("resource_type")
        for part in rows.order_by("pk"):
            assert part.contained_in_id is not None  # noqa: S101 - filtered on it
            children.setdefault(part.contained_in_id, []).append(part)
        deeper = []
        for root, pk in level:
            for part in children.get(pk, ()):
                if part.pk not in seen[root]:
                    seen[root].add(part.pk)
                    found[root].append(part)
                    deeper.append((root, part.pk))
        level = deeper
    return found


# --- locks ----------------------------------------------------------------------------------------------


def _lock_patron(patron: Patron | int) -> Patron:
    pk = patron if isinstance(patron, int) else patron.pk
    return Patron.objects.select_for_update(of=("self",)).select_related("library").get(pk=pk)


def _lock_types(type_ids: Iterable[int]) -> None:
    # Every booking of a type, specific or "one of this type", takes this lock first, so the count of a
    # type's units and its bookings cannot change between the check and the write. Sorted by id, so two
    # reservations touching the same types lock them in the same order and never deadlock.
    list(ResourceType.objects.select_for_update().filter(pk__in=sorted(set(type_ids))).order_by("pk").values("pk"))


def _patron_id(reservation: Reservation) -> int:
    """The patron of an open reservation; only finished history is ever anonymised (patron emptied)."""
    if reservation.patron_id is None:
        raise Conflict("This reservation's patron was anonymised; it can no longer change.", code="not_editable")
    return reservation.patron_id


def _patron(reservation: Reservation) -> Patron:
    _patron_id(reservation)
    assert reservation.patron is not None  # noqa: S101 - checked just above
    return reservation.patron


def _lock_reservation(reservation: Reservation | int) -> Reservation:
    pk = reservation if isinstance(reservation, int) else reservation.pk
    return Reservation.objects.select_for_update(of=("self",)).select_related("center", "library", "patron").get(pk=pk)


# --- checks -----------------------------------------------------------------------------------------------


def _item_reasons(
    holds: Sequence[_Hold],
    center: Branch,
    patron: Patron,
    starts_at: dt.datetime,
    *,
    portal: bool,
    cache: dict[Any, Any] | None = None,
) -> list[Reason]:
    """``cache`` keeps the catalog facts between the occurrences of one series (same lines, other dates)."""
    cache = {} if cache is None else cache
    library = center.library
    if "nodes" not in cache:
        cache["nodes"] = catalog.type_nodes(library.pk)
    nodes = cache["nodes"]
    on = starts_at.astimezone(ZoneInfo(library.time_zone)).date()
    if "authorizations" not in cache:
        cache["authorizations"] = list(
            Authorization.objects.filter(patron_id=patron.pk).values_list("resource_type_id", "expires_on")
        )
    # Valid on the pickup day.
    authorized = {kind for kind, until in cache["authorizations"] if authorization_valid_on(until, on)}
    type_ids = frozenset(h.resource_type.pk for h in holds)
    if ("lent_here", type_ids) not in cache:
        cache["lent_here", type_ids] = set(
            ResourceType.centers.through.objects.filter(branch_id=center.pk, resourcetype_id__in=type_ids).values_list(
                "resourcetype_id", flat=True
            )
        )
    lent_here = cache["lent_here", type_ids]
    items = []
    # A kit's parts are booked through the kit: the portal shows the kit, so the kit's type alone decides
    # whether the portal may book them (their own type is often hidden: nobody books a lone microphone
    # stand). The kit is a line's first hold; its parts follow it.
    lines_seen: set[int] = set()
    for hold in holds:
        type_id = hold.resource_type.pk
        resource = hold.resource
        details = {"line": str(hold.line)}
        if resource is not None:
            details["resource_id"] = str(resource.pk)
        else:
            details["resource_type_id"] = str(type_id)
        items.append(
            rules.Item(
                label=hold.label,
                type_name=hold.resource_type.name,
                is_resource=resource is not None,
                at_center=resource.center_id == center.pk if resource is not None else type_id in lent_here,
                in_service=resource is None or in_service_until(resource.out_of_service_from, hold.blocked_until),
                visible=hold.line in lines_seen or visible_in_portal(type_id, nodes),
                requires_authorization=requires_authorization(type_id, nodes),
                authorized=is_authorized(type_id, nodes, authorized),
                details=details,
            )
        )
        lines_seen.add(hold.line)
    return rules.item_reasons(items, portal=portal)


@dataclass
class _Known:
    """The busy intervals and units of a whole series' window, read once; each occurrence's rows are
    added as they are written, so later occurrences see them without reading again."""

    busy: queries.BusyIndex
    units: list[tuple[int, int, dt.datetime | None]]
    closed: bool = True  # whether the chains of type holds touching the window were read whole
    candidates: list[Resource] | None = None  # substitutes for taken resources (no kits), by name


def _availability_reasons(
    holds: Sequence[_Hold],
    center: Branch,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    exclude: int | None,
    known: _Known | None = None,
) -> list[Reason]:
    """Other bookings in the way: of each resource (buffers included), and of each type's units.

    Two statements: the busy intervals of every type involved at the center, and the units of those types
    (none when ``known`` has them already). Must run under the type locks.
    """
    if not holds:
        return []
    time_zone = center.library.time_zone
    type_ids = sorted({h.resource_type.pk for h in holds})
    window = (min(h.blocked_from for h in holds), max(h.blocked_until for h in holds))
    specific = [h for h in holds if h.resource is not None]
    elsewhere = [h.resource.pk for h in specific if h.resource is not None and h.resource.center_id != center.pk]
    if known is not None:
        busy, closed = known.busy.close_in(*window), known.closed
    else:
        busy, closed = queries.bookings_closed(
            start=window[0], end=window[1], center_id=center.pk, type_ids=type_ids, exclude=exclude
        )
        if elsewhere:  # refused anyway as lent from another center; still say when it is busy
            busy += queries.bookings(start=window[0], end=window[1], resource_ids=elsewhere, exclude=exclude)
    found: list[Reason] = []
    clashing_types: set[int] = set()
    clashes: list[tuple[_Hold, queries.Booking]] = []
    for hold in specific:
        assert hold.resource is not None  # noqa: S101 - narrowed by the list above
        resource_id = hold.resource.pk
        clash = next(
            (
                b
                for b in busy
                if b.resource_id == resource_id
                and b.blocked_from < hold.blocked_until
                and b.blocked_until > hold.blocked_from
            ),
            None,
        )
        if clash is not None:
            clashes.append((hold, clash))
            clashing_types.add(hold.resource_type.pk)
    for (hold, _), clash in zip(clashes, queries.with_spans([c for _, c in clashes]), strict=True):
        assert hold.resource is not None  # noqa: S101 - specific holds only
        found.append(queries.conflict_reason(hold.label, hold.resource.pk, clash, starts_at, ends_at, time_zone))
    units = known.units if known is not None else catalog.center_units(center.pk, type_ids)
    for type_id in type_ids:
        if type_id in clashing_types:
            continue
        new_holds = [
            h
            for h in holds
            if h.resource_type.pk == type_id and (h.resource is None or h.resource.center_id == center.pk)
        ]
        if not new_holds:
            continue
        # Every type hold must get one concrete unit for its whole span, specific bookings (new ones
        # included) staying on their units: rules.holds_fit, over the chains of holds the new rows touch.
        new_specific = [(h.resource.pk, (h.blocked_from, h.blocked_until)) for h in new_holds if h.resource is not None]
        new_type = [Interval(h.blocked_from, h.blocked_until, h.quantity) for h in new_holds if h.resource is None]
        if closed and not new_type and not any(b.resource_id is None and b.resource_type_id == type_id for b in busy):
            continue  # no hold of the type near: nothing to assign (rules.holds_fit would say so)
        unit_list, holds_before = queries.unit_view(type_id, units, busy, new_specific)
        touching = [(h.blocked_from, h.blocked_until) for h in new_holds]
        fit = rules.holds_fit(unit_list, [*holds_before, *new_type], touching) if closed else rules.Fit(None, False)
        if fit.ok:
            continue
        kind = new_holds[0].resource_type
        span = (min(h.blocked_from for h in new_holds), max(h.blocked_until for h in new_holds))
        plain_units, _ = queries.unit_view(type_id, units, busy)
        in_service = sum(1 for u in plain_units if u.out_of_service_from is None or u.out_of_service_from >= span[1])
        wanted = sum(h.quantity for h in new_holds)
        free = rules.unit_count_free(plain_units, holds_before, *span) if fit.decided else 0
        found.append(
            Reason(
                Code.TYPE_UNITS_UNAVAILABLE,
                f"{free} of {in_service} {kind.name} unit(s) are free for this time and {wanted} are "
                "asked for; choose another time or fewer."
                if fit.decided
                else f"The {kind.name} units could not be confirmed free for this time (too many bookings "
                "to weigh); choose another time or fewer.",
                {"resource_type_id": str(type_id), "free": str(free), "asked": str(wanted)},
            )
        )
    return found


def _standing_reasons(patron: Patron, center: Branch, now: dt.datetime, *, portal: bool) -> list[Reason]:
    decision = standing.decide(patron, Action.RESERVE, at=center, now=now)
    return [
        Reason(
            r.code.value,
            r.patron_message if portal else r.staff_message,
            {"remedy": r.remedy, **{k: str(v) for k, v in r.details.items()}},
        )
        for r in decision.reasons
    ]


def _may_override(actor: audit.Actor, library_id: int, override_comment: str | None) -> str:
    """The cleaned override comment, or "" when none was given; refuses it without the permission."""
    comment = _text(override_comment, "override_comment", COMMENT_MAX)
    if comment and not has_permission(actor.user, library_id, Permission.OVERRIDE_RESERVATION_RULES):
        raise PermissionDenied(
            f"You need the permission {Permission.OVERRIDE_RESERVATION_RULES.label!r} to override reservation rules."
        )
    return comment


def _settle(reasons: Sequence[Reason], override_comment: str, refusal: str) -> list[str]:
    """Refuse with every reason, unless all of them may be and are overridden. Returns the overridden codes."""
    if not reasons:
        return []
    if override_comment and all(r.overridable for r in reasons):
        return sorted({str(r.code) for r in reasons})
    blocking = [r for r in reasons if not (override_comment and r.overridable)]
    listed = blocking if override_comment else list(reasons)
    raise Refused(
        f"{refusal}: {len(listed)} reason(s).",
        [{**r.as_dict(), "overridable": "true" if r.overridable else "false"} for r in listed],
    )


# --- writing --------------------------------------------------------------------------------------------


def _write_holds(reservation: Reservation, lines: Sequence[LineRequest], holds: Sequence[_Hold]) -> None:
    rows = [
        ReservationLine(
            reservation=reservation, resource=line.resource, resource_type=line.resource_type, quantity=line.quantity
        )
        for line in lines
    ]
    ReservationLine.objects.bulk_create(rows)  # both databases return the new ids
    occupancies = [
        Occupancy(
            reservation=reservation,
            line=rows[hold.line],
            resource=hold.resource,
            resource_type=hold.resource_type,
            center_id=reservation.center_id,
            quantity=hold.quantity,
            blocked_from=hold.blocked_from,
            blocked_until=hold.blocked_until,
            active=True,
        )
        for hold in holds
    ]
    try:
        with transaction.atomic():
            Occupancy.objects.bulk_create(occupancies)
    except IntegrityError:
        # PostgreSQL's exclusion constraint: another transaction booked one of these resources for an
        # overlapping span. The type locks make this unreachable through these services; it guards every
        # other path that writes occupancy rows.
        raise Refused(
            "The reservation cannot be made: 1 reason(s).",
            [
                {
                    "code": Code.RESOURCE_BOOKED.value,
                    "message": "One of the resources was booked for this time a moment ago; choose another time or resource.",
                    "overridable": "false",
                }
            ],
        ) from None


def _record(reservation: Reservation, actor: audit.Actor, source: str, comment: str = "") -> ReservationEvent:
    return ReservationEvent.objects.create(
        reservation=reservation, from_state=source, to_state=reservation.state, at=clock.now(),
        by=actor.account, by_label=actor.label[:150], channel=actor.channel, comment=comment,
    )  # fmt: skip


def _center(patron: Patron, center: Branch | int | str) -> Branch:
    pk = _pk(center)
    found = Branch.objects.select_related("library").filter(pk=pk, library_id=patron.library_id).first() if pk else None
    if found is None:
        raise FieldError("center", f"Unknown checkout center at {patron.library.name}; choose one from the list.")
    if not found.is_checkout_center:
        raise FieldError("center", f"{found.name} does not lend resources; choose a checkout center.")
    return found


# --- services ---------------------------------------------------------------------------------------------


def create_reservation(
    *,
    actor: audit.Actor,
    patron: Patron,
    center: Branch | int | str,
    starts_at: dt.datetime | str,
    ends_at: dt.datetime | str,
    lines: Iterable[Mapping[str, Any] | LineRequest],
    title: str = "",
    note: str = "",
    pickup_option: str = Reservation.PickupOption.DESK,
    delivery_location: str = "",
    channel: str = Reservation.Channel.STAFF,
    override_comment: str | None = None,
    walk_up: bool = False,
    series: ReservationSeries | None = None,
) -> Reservation:
    """Reserve resources for a patron at a checkout center, or refuse with every reason at once.

    A portal reservation at a center that needs approval starts as ``pending_approval`` (and holds its
    resources meanwhile); every other starts as ``reserved``. ``walk_up`` is the desk handing resources
    out now without a reservation (the circulation app checks it out in the same transaction): the
    lead time does not apply and a start a moment ago is not "in the past". ``series`` adds the
    reservation to an existing series of the same patron and center (an occurrence booked afterwards,
    e.g. with the substitute offered for a conflict), so it is listed and cancelled with the series.
    """
    place = _center(patron, center)
    values = _clean_details(
        place, starts_at=starts_at, ends_at=ends_at, title=title, note=note,
        pickup_option=pickup_option, delivery_location=delivery_location,
    )  # fmt: skip
    if channel not in Reservation.Channel.values:
        raise FieldError(
            "channel", f"Unknown channel {str(channel)[:20]!r}; use {', '.join(Reservation.Channel.values)}."
        )
    wanted = clean_lines(place.library, lines)
    comment = _may_override(actor, place.library_id, override_comment)
    with transaction.atomic():
        patron = _lock_patron(patron)
        if series is not None and (series.patron_id != patron.pk or series.center_id != place.pk):
            raise FieldError("series", "Only a series of the same patron at the same checkout center can take it.")
        holds = _plan(wanted, values["starts_at"], values["ends_at"])
        _lock_types(h.resource_type.pk for h in holds)
        now = clock.now()
        policy = queries.policy_for(place)
        portal = channel == Reservation.Channel.PORTAL
        reasons = _all_reasons(
            policy, place, patron, values, holds, now, portal=portal, exclude=None,
            open_count=queries.open_reservation_count(patron.pk, place.pk),
        )  # fmt: skip
        if walk_up:
            reasons = [r for r in reasons if r.code not in (Code.STARTS_IN_PAST, Code.INSIDE_LEAD_TIME)]
        overridden = _settle(reasons, comment, "The reservation cannot be made")
        state = State.PENDING_APPROVAL if portal and policy.approval_required else State.RESERVED
        reservation = _insert(
            actor, place, patron, state, channel, comment, overridden, now, values, wanted, holds, series
        )
    return reservation


def _insert(
    actor: audit.Actor,
    place: Branch,
    patron: Patron,
    state: State,
    channel: str,
    comment: str,
    overridden: list[str],
    now: dt.datetime,
    values: Mapping[str, Any],
    wanted: Sequence[LineRequest],
    holds: Sequence[_Hold],
    series: ReservationSeries | None = None,
) -> Reservation:
    """Write one reservation with its lines, occupancy rows, first event and audit event. Under the locks."""
    reservation = Reservation.objects.create(
        library_id=place.library_id, center=place, patron=patron, state=state, operator=actor.account,
        operator_label=actor.label[:150], channel=channel, override_comment=comment if overridden else "",
        overridden=overridden, created_at=now, updated_at=now, series=series, **values,
    )  # fmt: skip
    _write_holds(reservation, wanted, holds)
    _record(reservation, actor, "", comment if overridden else "")
    audit.record(
        actor, "reservation.created", library_id=place.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, reservation_id=reservation.pk, center_id=place.pk, state=state.value,
        starts_at=reservation.starts_at.isoformat(), ends_at=reservation.ends_at.isoformat(),
        overridden=overridden, series_id=series.pk if series else None,
    )  # fmt: skip
    return reservation


def _clean_details(place: Branch, **given: Any) -> dict[str, Any]:
    """The reservation's own fields from the request; every bad field reported at once."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    zone = place.library.time_zone
    checks: dict[str, Callable[[Any], Any]] = {
        "starts_at": lambda v: parse_instant(v, "starts_at", zone),
        "ends_at": lambda v: parse_instant(v, "ends_at", zone),
        "title": lambda v: _text(v, "title", TITLE_MAX),
        "note_to_staff": lambda v: _text(v, "note", NOTE_MAX),
        "pickup_option": _pickup_option,
        "delivery_location": lambda v: _text(v, "delivery_location", LOCATION_MAX),
    }
    renamed = {"note": "note_to_staff"}
    for key, value in given.items():
        field = renamed.get(key, key)
        try:
            values[field] = checks[field](value)
        except FieldError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return values


def _pickup_option(value: object) -> str:
    text = str(value or "").strip()
    if text not in Reservation.PickupOption.values:
        raise FieldError(
            "pickup_option", f"Choose how to receive the resources: {', '.join(Reservation.PickupOption.values)}."
        )
    return text


def _all_reasons(
    policy: rules.Policy,
    place: Branch,
    patron: Patron,
    values: Mapping[str, Any],
    holds: Sequence[_Hold],
    now: dt.datetime,
    *,
    portal: bool,
    exclude: int | None,
    open_count: int,
) -> list[Reason]:
    request = rules.Request(
        starts_at=values["starts_at"],
        ends_at=values["ends_at"],
        now=now,
        time_zone=place.library.time_zone,
        title=values["title"],
        pickup_option=values["pickup_option"],
        delivery_location=values["delivery_location"],
        open_reservations=open_count,
        signature_on_file=patron.signature_on_file,
    )
    reasons = rules.request_reasons(policy, request)
    items = _item_reasons(holds, place, patron, values["starts_at"], portal=portal)
    reasons += items
    reasons += _standing_reasons(patron, place, now, portal=portal)
    if values["ends_at"] > values["starts_at"]:
        # A type the center does not lend has no units there; saying so once is enough.
        elsewhere = _lent_elsewhere(items)
        wanted = [h for h in holds if h.resource is not None or h.resource_type.pk not in elsewhere]
        reasons += _availability_reasons(wanted, place, values["starts_at"], values["ends_at"], exclude)
    return reasons


def _lent_elsewhere(reasons: Sequence[Reason]) -> set[int]:
    return {int(r.details["resource_type_id"]) for r in reasons if r.code == Code.TYPE_NOT_LENT_HERE}


def edit_reservation(
    *,
    actor: audit.Actor,
    reservation: Reservation,
    starts_at: dt.datetime | str | None = None,
    ends_at: dt.datetime | str | None = None,
    lines: Iterable[Mapping[str, Any] | LineRequest] | None = None,
    title: str | None = None,
    note: str | None = None,
    pickup_option: str | None = None,
    delivery_location: str | None = None,
    override_comment: str | None = None,
) -> Reservation:
    """Change a reservation still waiting for approval; an argument left None keeps its value.

    Refused inside the lead time, by the current start or the new one, and checked again in full, as if
    it were made anew (its own bookings aside).
    """
    with transaction.atomic():
        reservation = _lock_reservation(reservation)
        if reservation.state not in rules.EDITABLE_STATES:
            raise Conflict(
                f"A {State(reservation.state).label.lower()} reservation cannot be changed, only cancelled; "
                "cancel it and make a new one.",
                code="not_editable",
            )
        place = reservation.center
        given = {
            "starts_at": starts_at if starts_at is not None else reservation.starts_at,
            "ends_at": ends_at if ends_at is not None else reservation.ends_at,
            "title": title if title is not None else reservation.title,
            "note": note if note is not None else reservation.note_to_staff,
            "pickup_option": pickup_option if pickup_option is not None else reservation.pickup_option,
            "delivery_location": delivery_location if delivery_location is not None else reservation.delivery_location,
        }
        values = _clean_details(place, **given)
        if lines is None:
            wanted = [
                LineRequest(line.resource, line.resource_type, line.quantity)
                for line in reservation.lines.select_related("resource__resource_type", "resource_type")
            ]
        else:
            wanted = clean_lines(place.library, lines)
        comment = _may_override(actor, place.library_id, override_comment)
        patron = _lock_patron(_patron_id(reservation))
        holds = _plan(wanted, values["starts_at"], values["ends_at"])
        old_types = reservation.occupancies.values_list("resource_type_id", flat=True)
        _lock_types([*old_types, *(h.resource_type.pk for h in holds)])
        now = clock.now()
        policy = queries.policy_for(place)
        reasons: list[Reason] = []
        current = rules.lead_time_reason(policy, reservation.starts_at, now, which="current start")
        if current is not None:
            reasons.append(current)
        reasons += _all_reasons(
            policy, place, patron, values, holds, now, portal=actor.channel == Reservation.Channel.PORTAL,
            exclude=reservation.pk, open_count=queries.open_reservation_count(patron.pk, place.pk, exclude=reservation.pk),
        )  # fmt: skip
        overridden = _settle(reasons, comment, "The reservation cannot be changed")
        changed = sorted(k for k, v in values.items() if getattr(reservation, k) != v)
        if lines is not None:
            changed.append("lines")
        for key, value in values.items():
            setattr(reservation, key, value)
        reservation.updated_at = now
        if overridden:
            reservation.override_comment = comment
            reservation.overridden = sorted(set(reservation.overridden) | set(overridden))
        reservation.save()
        reservation.occupancies.all().delete()
        reservation.lines.all().delete()
        _write_holds(reservation, wanted, holds)
        _record(reservation, actor, reservation.state, f"Changed: {', '.join(changed) or 'nothing'}.")
        audit.record(
            actor, "reservation.edited", library_id=reservation.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, reservation_id=reservation.pk, fields=changed, overridden=overridden,
        )  # fmt: skip
    return reservation


def _target(reservation: Reservation, step: Step) -> State:
    """Where ``step`` leads from the reservation's state, or ``Conflict`` when the table does not allow it."""
    target = rules.next_state(reservation.state, step)
    if target is None:
        raise Conflict(
            f"A {State(reservation.state).label.lower()} reservation cannot be {_DONE[step]}.",
            code="transition_not_allowed",
        )
    return target


def _move(actor: audit.Actor, reservation: Reservation, step: Step, comment: str) -> str:
    """Apply one row of the transition table; returns the state it left. The caller holds the row lock."""
    source = State(reservation.state)
    target = _target(reservation, step)
    reservation.state = target
    reservation.updated_at = clock.now()
    reservation.save(update_fields=["state", "updated_at"])
    if not rules.is_open(target):
        # Freed at once: the rows stay as history, but no longer block anyone.
        reservation.occupancies.filter(active=True).update(active=False)
    _record(reservation, actor, source.value, comment)
    audit.record(
        actor, f"reservation.{step.value}", library_id=reservation.library_id, patron_id=reservation.patron_id,
        patron_label=reservation.patron.display_name if reservation.patron else "", reservation_id=reservation.pk,
        from_state=source.value,
        to_state=target.value,
    )  # fmt: skip
    return source.value


def approve_reservation(
    *, actor: audit.Actor, reservation: Reservation, comment: str = "", override_comment: str | None = None
) -> Reservation:
    """Approve a pending reservation, after checking again under the locks that its resources are still
    free and in service, and that the patron may still reserve them (standing, authorizations)."""
    note = _text(comment, "comment", COMMENT_MAX)
    with transaction.atomic():
        reservation = _lock_reservation(reservation)
        _target(reservation, Step.APPROVE)
        place = reservation.center
        override = _may_override(actor, place.library_id, override_comment)
        patron = _lock_patron(_patron_id(reservation))
        holds = _stored_holds(reservation)
        _lock_types(h.resource_type.pk for h in holds)
        now = clock.now()
        reasons = _item_reasons(holds, place, patron, reservation.starts_at, portal=False)
        elsewhere = _lent_elsewhere(reasons)
        reasons += _standing_reasons(patron, place, now, portal=False)
        wanted = [h for h in holds if h.resource is not None or h.resource_type.pk not in elsewhere]
        reasons += _availability_reasons(wanted, place, reservation.starts_at, reservation.ends_at, reservation.pk)
        overridden = _settle(reasons, override, "The reservation cannot be approved")
        if overridden:
            reservation.override_comment = override
            reservation.overridden = sorted(set(reservation.overridden) | set(overridden))
            reservation.save(update_fields=["override_comment", "overridden"])
        _move(actor, reservation, Step.APPROVE, "; ".join(t for t in (note, override if overridden else "") if t))
    return reservation


def _stored_holds(reservation: Reservation) -> list[_Hold]:
    """The reservation's occupancy rows as written (with the buffers of that time), to check them again."""
    lines = {line_id: i for i, line_id in enumerate(reservation.lines.values_list("pk", flat=True))}
    holds = []
    for row in reservation.occupancies.select_related("resource__resource_type", "resource_type").order_by("pk"):
        label = str(row.resource) if row.resource else f"{row.quantity} x {row.resource_type.name}"
        holds.append(
            _Hold(
                lines[row.line_id],
                row.resource,
                row.resource_type,
                row.quantity,
                row.blocked_from,
                row.blocked_until,
                label,
            )
        )
    return holds


def reject_reservation(*, actor: audit.Actor, reservation: Reservation, comment: str) -> Reservation:
    """Reject a pending reservation, saying why (the patron sees the comment); its resources are freed."""
    note = _text(comment, "comment", COMMENT_MAX, required=True)
    with transaction.atomic():
        reservation = _lock_reservation(reservation)
        _move(actor, reservation, Step.REJECT, note)
    return reservation


def cancel_reservation(*, actor: audit.Actor, reservation: Reservation, comment: str = "") -> Reservation:
    """Cancel a pending or reserved reservation; its resources are free for others at once."""
    note = _text(comment, "comment", COMMENT_MAX)
    with transaction.atomic():
        reservation = _lock_reservation(reservation)
        if reservation.series_id is not None and reservation.starts_at <= clock.now():
            # A series' past occurrences are frozen, so "cancel the rest" never rewrites history.
            raise Conflict("This occurrence has started and is kept as it is.", code="occurrence_in_past")
        _move(actor, reservation, Step.CANCEL, note)
    return reservation


# --- center policies ---------------------------------------------------------------------------------------

_NUMBERS = {
    "min_lead_minutes": (0, 365 * 24 * 60, False),
    "max_duration_minutes": (1, 365 * 24 * 60, True),
    "max_open_reservations": (1, 10_000, True),
    "series_horizon_days": (1, 3 * 365, False),
    "series_max_occurrences": (1, 1_000, False),
    "no_show_minutes": (0, 7 * 24 * 60, False),
    "overdue_grace_minutes": (0, 365 * 24 * 60, False),
}
_FLAGS = ("approval_required", "title_required", "desk_pickup", "signature_required")


@transaction.atomic
def save_center_policy(*, actor: audit.Actor, center: Branch, data: Mapping[str, Any]) -> CenterPolicy:
    """Set a checkout center's reservation rules; a key left out keeps its value (or the default)."""
    center = Branch.objects.select_related("library").get(pk=center.pk)
    if not center.is_checkout_center:
        raise FieldError("center", f"{center.name} is not a checkout center; mark the branch as one first.")
    policy = CenterPolicy.objects.select_for_update().filter(center=center).first() or CenterPolicy(center=center)
    errors: dict[str, list[str]] = {}
    changed: list[str] = []
    for name, (low, high, optional) in _NUMBERS.items():
        if name not in data:
            continue
        text = str(data[name] if data[name] is not None else "").strip()
        if not text and optional:
            value: object = None
        elif text.isdigit() and low <= int(text) <= high:
            value = int(text)
        else:
            empty = " or leave it empty for no limit" if optional else ""
            errors[name] = [f"Enter a whole number from {low} to {high:,}{empty}."]
            continue
        changed.append(name)
        setattr(policy, name, value)
    for name in _FLAGS:
        if name in data:
            setattr(policy, name, flag(data[name]))
            changed.append(name)
    if "delivery_locations" in data:
        raw = data["delivery_locations"] or []
        names = [str(n).strip() for n in (raw.splitlines() if isinstance(raw, str) else raw) if str(n).strip()]
        if any(len(n) > LOCATION_MAX for n in names) or len(set(names)) != len(names):
            errors["delivery_locations"] = [f"Give each location once, in at most {LOCATION_MAX} characters."]
        else:
            policy.delivery_locations = names
            changed.append("delivery_locations")
    if "overdue_fee" in data:
        text = str(data["overdue_fee"] if data["overdue_fee"] is not None else "").strip()
        try:
            policy.overdue_fee = parse_amount(text, center.library.currency, field="overdue_fee") if text else None
            changed.append("overdue_fee")
        except FieldError as exc:
            errors.update(exc.errors)
    for name in ("problem_reports_enabled", "calendar_feed_enabled"):  # the portal's feature switches
        if name in data:
            setattr(policy, name, flag(data[name]))
            changed.append(name)
    if "portal_message" in data:
        try:
            policy.portal_message = clean_html(data["portal_message"], field="portal_message")
            changed.append("portal_message")
        except FieldError as exc:
            errors.update(exc.errors)
    if "open_hours" in data:
        try:
            rules.parse_open_hours(data["open_hours"])
        except ValueError as exc:
            errors["open_hours"] = [str(exc)]
        else:
            policy.open_hours = data["open_hours"] or {}
            changed.append("open_hours")
    if errors:
        raise ValidationFailed(errors)
    policy.save()
    audit.record(
        actor, "center_policy.saved", library_id=center.library_id, center_id=center.pk, fields=sorted(changed)
    )
    return policy


# --- repeats -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OccurrenceConflict:
    """An occurrence of a series that was not booked: why, and per line a free resource to take instead."""

    index: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    reasons: list[dict[str, str]]
    substitutes: dict[int, Resource]


@dataclass(frozen=True)
class SeriesResult:
    series: ReservationSeries
    booked: list[Reservation]
    conflicts: list[OccurrenceConflict]


def clean_repeat(raw: Mapping[str, Any] | rules.Repeat) -> rules.Repeat:
    """A repeat rule from a request: ``frequency``, ``interval``, ``weekdays``, ``month_day`` (1-31 or
    "last"), ``week_of_month`` (1-5 or "last"), ``until`` (a date) and/or ``count``."""
    if isinstance(raw, rules.Repeat):
        repeat = raw
    else:
        errors: dict[str, list[str]] = {}

        def number(name: str, *, last: bool = False) -> int | None:
            value = raw.get(name)
            if value in (None, ""):
                return None
            text = str(value).strip().lower()
            if last and text == "last":
                return rules.LAST
            if text.lstrip("-").isdigit():
                return int(text)
            errors[f"repeat.{name}"] = ["Enter a whole number" + (' or "last".' if last else ".")]
            return None

        frequency = str(raw.get("frequency") or "").strip().lower()
        if frequency not in rules.Frequency.__members__.values():
            errors["repeat.frequency"] = [f"Choose how it repeats: {', '.join(f.value for f in rules.Frequency)}."]
        weekdays = raw.get("weekdays") or ()
        if isinstance(weekdays, str):
            weekdays = [d for d in weekdays.replace(",", " ").split() if d]
        until: dt.date | None = None
        if raw.get("until") not in (None, ""):
            value = raw["until"]
            try:
                until = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value).strip())
            except ValueError:
                errors["repeat.until"] = ["Give the last date such as 2027-12-31."]
        values = {
            "interval": number("interval") or 1,
            "month_day": number("month_day", last=True),
            "week_of_month": number("week_of_month", last=True),
            "count": number("count"),
        }
        if errors:
            raise ValidationFailed(errors)
        repeat = rules.Repeat(
            frequency=rules.Frequency(frequency),
            weekdays=tuple(str(d).strip().lower()[:3] for d in weekdays),
            until=until,
            **values,  # type: ignore[arg-type]
        )
    problems = rules.repeat_errors(repeat)
    if problems:
        raise ValidationFailed({f"repeat.{k}": [v] for k, v in problems.items()})
    return repeat


def create_series(
    *,
    actor: audit.Actor,
    patron: Patron,
    center: Branch | int | str,
    starts_at: dt.datetime | str,
    ends_at: dt.datetime | str,
    repeat: Mapping[str, Any] | rules.Repeat,
    lines: Iterable[Mapping[str, Any] | LineRequest],
    title: str = "",
    note: str = "",
    pickup_option: str = Reservation.PickupOption.DESK,
    delivery_location: str = "",
    channel: str = Reservation.Channel.STAFF,
    override_comment: str | None = None,
    all_or_nothing: bool = False,
) -> SeriesResult:
    """Book a repeating reservation: one independent reservation per occurrence, in one transaction.

    ``starts_at``/``ends_at`` are the first occurrence; the rule runs on the center's wall clock. Refused
    whole when the series breaks the center's caps or a rule that is the same for every occurrence
    (quota counting every occurrence, standing, title, pickup, signature). Otherwise every free
    occurrence is booked and every other one reported with its reasons and, per line, a free resource of
    the same type to take instead; with ``all_or_nothing`` one conflict refuses them all. Nothing at all
    is booked when no occurrence is free.
    """
    place = _center(patron, center)
    values = _clean_details(
        place, starts_at=starts_at, ends_at=ends_at, title=title, note=note,
        pickup_option=pickup_option, delivery_location=delivery_location,
    )  # fmt: skip
    if channel not in Reservation.Channel.values:
        raise FieldError("channel", f"Unknown channel; use {', '.join(Reservation.Channel.values)}.")
    rule = clean_repeat(repeat)
    wanted = clean_lines(place.library, lines)
    comment = _may_override(actor, place.library_id, override_comment)
    zone = ZoneInfo(place.library.time_zone)
    first = values["starts_at"].astimezone(zone).replace(tzinfo=None)
    length = values["ends_at"].astimezone(zone).replace(tzinfo=None) - first
    portal = channel == Reservation.Channel.PORTAL
    with transaction.atomic():
        patron = _lock_patron(patron)
        now = clock.now()
        policy = queries.policy_for(place)
        spans = rules.expand(rule, first, length, place.library.time_zone, limit=policy.series_max_occurrences + 1)
        if not spans:
            raise FieldError("repeat", "The rule gives no dates before it ends; check the days and the end.")
        # Series-wide rules, the quota counting every occurrence, before anything is written.
        request = rules.Request(
            starts_at=spans[0][0], ends_at=spans[0][1], now=now, time_zone=place.library.time_zone,
            title=values["title"], pickup_option=values["pickup_option"],
            delivery_location=values["delivery_location"],
            open_reservations=queries.open_reservation_count(patron.pk, place.pk),
            signature_on_file=patron.signature_on_file, new_reservations=len(spans),
        )  # fmt: skip
        general = rules.series_reasons(policy, spans, now, asked=rule.count)
        general += [r for r in rules.request_reasons(policy, request) if r.code in rules.SERIES_WIDE]
        general += _standing_reasons(patron, place, now, portal=portal)
        overridden_all = _settle(general, comment, "The series cannot be booked")
        parts = _parts([line.resource for line in wanted if line.resource is not None])
        plans = [_plan(wanted, start, end, parts) for start, end in spans]
        type_ids = sorted({h.resource_type.pk for plan in plans for h in plan})
        _lock_types(type_ids)
        # One read of everything booked over the series' window, under the locks; see _Known.
        window = (min(h.blocked_from for p in plans for h in p), max(h.blocked_until for p in plans for h in p))
        elsewhere = [h.resource.pk for h in plans[0] if h.resource is not None and h.resource.center_id != place.pk]
        # Only the rows near the occurrences (and the chains of holds around them) are read, in one statement.
        occurrence_windows = [(min(h.blocked_from for h in p), max(h.blocked_until for h in p)) for p in plans]
        busy, closed = queries.bookings_within(windows=occurrence_windows, center_id=place.pk, type_ids=type_ids)
        busy += queries.bookings(start=window[0], end=window[1], resource_ids=elsewhere) if elsewhere else []
        # The series' own resources are the only ones that can clash: their rows get their reservations'
        # spans now, in one statement, rather than one statement per conflicting occurrence.
        asked = {h.resource.pk for h in plans[0] if h.resource is not None}
        filled = {
            (b.reservation_id, b.resource_id): b
            for b in queries.with_spans([b for b in busy if b.resource_id in asked])
        }
        busy = [filled.get((b.reservation_id, b.resource_id), b) for b in busy]
        # The units of these types at the center, read once with what substitutes need (names, kits).
        resources = list(
            Resource.objects.filter(center_id=place.pk, resource_type_id__in=type_ids)
            .select_related("resource_type")
            .annotate(is_kit=Exists(Resource.objects.filter(contained_in=OuterRef("pk"))))
            .order_by("name", "identifier")
        )
        known = _Known(
            queries.BusyIndex(busy),
            sorted((r.pk, r.resource_type_id, r.out_of_service_from) for r in resources),
            closed,
            [r for r in resources if not r.is_kit],
        )
        cache: dict[Any, Any] = {}
        state = State.PENDING_APPROVAL if portal and policy.approval_required else State.RESERVED
        per_occurrence = rules.Policy(**{**vars(policy), "max_open_reservations": None})
        accepted: list[tuple[dict[str, Any], list[_Hold], list[str]]] = []
        conflicts: list[OccurrenceConflict] = []
        for index, ((start, end), holds) in enumerate(zip(spans, plans, strict=True)):
            occurrence = {**values, "starts_at": start, "ends_at": end}
            request = rules.Request(**{**vars(request), "starts_at": start, "ends_at": end, "new_reservations": 1})
            reasons = [r for r in rules.request_reasons(per_occurrence, request) if r.code not in rules.SERIES_WIDE]
            items = _item_reasons(holds, place, patron, start, portal=portal, cache=cache)
            not_lent = _lent_elsewhere(items)
            reasons += items
            free = [h for h in holds if h.resource is not None or h.resource_type.pk not in not_lent]
            reasons += _availability_reasons(free, place, start, end, None, known)
            overridable = bool(comment) and all(r.overridable for r in reasons)
            if reasons and not overridable:
                conflicts.append(
                    OccurrenceConflict(
                        index, start, end,
                        [{**r.as_dict(), "overridable": "true" if r.overridable else "false"} for r in reasons],
                        _substitutes(place, wanted, reasons, start, end, known),
                    )
                )  # fmt: skip
                continue
            accepted.append((occurrence, holds, sorted(set(overridden_all) | {str(r.code) for r in reasons})))
            # Later occurrences see this one's rows (a series never double-books itself).
            known.busy.add([
                queries.Booking(
                    -1, h.resource.pk if h.resource else None, h.resource_type.pk, h.quantity, h.blocked_from,
                    h.blocked_until, start, end,
                )
                for h in holds
            ])  # fmt: skip
        if conflicts and (all_or_nothing or not accepted):
            raise Refused(
                f"The series cannot be booked: {len(conflicts)} of {len(spans)} occurrence(s) are not free.",
                [
                    {
                        **reason,
                        "occurrence": str(conflict.index),
                        "starts_at": conflict.starts_at.isoformat(),
                        **{f"substitute.{line}": str(r.pk) for line, r in conflict.substitutes.items()},
                    }
                    for conflict in conflicts
                    for reason in conflict.reasons
                ],
            )
        # The series' own row is written with its occurrences (nothing at all is written when refused).
        series = ReservationSeries(
            library_id=place.library_id, center=place, patron=patron, rule=rule.rrule_text(), created_at=now,
            created_by=actor.account,
        )  # fmt: skip
        booked = _insert_many(actor, place, patron, state, channel, comment, now, accepted, wanted, series)
        audit.record(
            actor, "reservation_series.created", library_id=place.library_id, patron_id=patron.pk,
            patron_label=patron.display_name, series_id=series.pk, rule=series.rule,
            reservation_ids=[r.pk for r in booked], conflicts=[c.starts_at.isoformat() for c in conflicts],
        )  # fmt: skip
    return SeriesResult(series, booked, conflicts)


def _insert_rows(model: Any, fields: Sequence[str], rows: Sequence[Sequence[Any]], *, returning: bool) -> list[int]:
    """One multi-row INSERT of plain values (ids, texts, numbers, instants, JSON lists) through the driver;
    the new ids in order when ``returning``. For the series' hundreds of rows ``bulk_create`` spent more
    time preparing each value than the database spent writing them (the lending benchmark)."""
    if not rows:
        return []
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(f).column) for f in fields)
    marks = "(" + ", ".join(["%s"] * len(fields)) + ")"
    ids: list[int] = []
    for first in range(0, len(rows), 500):
        chunk = rows[first : first + 500]
        params = [_plain(v) for row in chunk for v in row]
        sql = f"INSERT INTO {model._meta.db_table} ({columns}) VALUES {', '.join([marks] * len(chunk))}"
        with connection.cursor() as cursor:
            cursor.execute(sql + (" RETURNING id" if returning else ""), params)
            if returning:
                ids += [row[0] for row in cursor.fetchall()]
    return ids


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    return json.dumps(value) if isinstance(value, list) else value


def _unnest(model: Any, fields: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
    """PostgreSQL: ``INSERT … SELECT * FROM unnest(…)`` of ``rows``, one array per column, and its
    parameters. A handful of parameters, however many rows: the driver binds each array in one go, where
    a multi-row VALUES list costs it a placeholder per value (9 ms for a series' ~1,000 values)."""
    meta = model._meta
    columns = [meta.get_field(f) for f in fields]
    arrays = ", ".join(f"%s::{c.db_type(connection)}[]" for c in columns)
    sql = (
        f"INSERT INTO {meta.db_table} ({', '.join(connection.ops.quote_name(c.column) for c in columns)}) "
        f"SELECT * FROM unnest({arrays})"
    )
    return sql, [
        [json.dumps(row[i]) if isinstance(row[i], list) else row[i] for row in rows] for i in range(len(fields))
    ]


def _insert_many(
    actor: audit.Actor,
    place: Branch,
    patron: Patron,
    state: State,
    channel: str,
    comment: str,
    now: dt.datetime,
    accepted: Sequence[tuple[Mapping[str, Any], Sequence[_Hold], list[str]]],
    wanted: Sequence[LineRequest],
    series: ReservationSeries,
) -> list[Reservation]:
    """Write the series and its occurrences, with their lines, occupancy rows and first events: on
    PostgreSQL in two statements (the new ids, then one statement of five inserts), elsewhere in one
    statement per table. The series' one audit event, written by the caller, lists them."""
    account = actor.account.pk if actor.account is not None else None
    label = actor.label[:150]
    fields = [
        "library", "center", "patron", "series", "state", "operator", "operator_label", "channel", "override_comment",
        "overridden", "created_at", "updated_at", "starts_at", "ends_at", "title", "note_to_staff", "pickup_option",
        "delivery_location",
    ]  # fmt: skip

    def values(series_id: int | None) -> list[tuple[Any, ...]]:
        return [
            (
                place.library_id, place.pk, patron.pk, series_id, state.value, account, label, channel,
                comment if overridden else "", overridden, now, now, *(v[k] for k in fields[12:]),
            )
            for v, _, overridden in accepted
        ]  # fmt: skip

    def lines(reservation_ids: Sequence[int]) -> list[tuple[Any, ...]]:
        return [
            (pk, w.resource.pk if w.resource else None, w.resource_type.pk if w.resource_type else None, w.quantity)
            for pk in reservation_ids
            for w in wanted
        ]

    def occupancies(reservation_ids: Sequence[int], line_ids: Sequence[int]) -> list[tuple[Any, ...]]:
        return [
            (
                pk, line_ids[i * len(wanted) + h.line], h.resource.pk if h.resource else None,
                h.resource_type.pk, place.pk, h.quantity, h.blocked_from, h.blocked_until, True,
            )
            for i, (pk, (_, holds, _)) in enumerate(zip(reservation_ids, accepted, strict=True))
            for h in holds
        ]  # fmt: skip

    def events(reservation_ids: Sequence[int]) -> list[tuple[Any, ...]]:
        return [
            (pk, "", state.value, now, account, label, actor.channel, comment if overridden else "")
            for pk, (_, _, overridden) in zip(reservation_ids, accepted, strict=True)
        ]

    line_fields = ["reservation", "resource", "resource_type", "quantity"]
    occupancy_fields = [
        "reservation", "line", "resource", "resource_type", "center", "quantity", "blocked_from", "blocked_until",
        "active",
    ]  # fmt: skip
    event_fields = ["reservation", "from_state", "to_state", "at", "by", "by_label", "channel", "comment"]
    series_fields = ["library", "center", "patron", "rule", "created_at", "created_by"]
    series_row = (place.library_id, place.pk, patron.pk, series.rule, now, account)
    try:
        if connection.vendor == "postgresql":
            # The ids first, from the tables' own sequences, so every row can name its parents; then every
            # insert in one statement (the foreign keys are checked at commit, the exclusion constraint at once).
            tables = [m._meta.db_table for m in (ReservationSeries, Reservation, ReservationLine)]
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')), "
                    "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)), "
                    "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s))",
                    [tables[0], tables[1], len(accepted), tables[2], len(accepted) * len(wanted)],
                )
                series_id, ids, line_ids = cursor.fetchone()
                parts = [
                    _unnest(ReservationSeries, ["id", *series_fields], [(series_id, *series_row)]),
                    _unnest(Reservation, ["id", *fields], [(pk, *row) for pk, row in zip(ids, values(series_id), strict=True)]),
                    _unnest(ReservationLine, ["id", *line_fields], [(pk, *row) for pk, row in zip(line_ids, lines(ids), strict=True)]),
                    _unnest(Occupancy, occupancy_fields, occupancies(ids, line_ids)),
                    _unnest(ReservationEvent, event_fields, events(ids)),
                ]  # fmt: skip
                cursor.execute(
                    "WITH "
                    + ", ".join(f"w{i} AS ({sql})" for i, (sql, _) in enumerate(parts[:-1]))
                    + " "
                    + parts[-1][0],
                    [p for _, params in parts for p in params],
                )
        else:
            series_id = _insert_rows(ReservationSeries, series_fields, [series_row], returning=True)[0]
            ids = _insert_rows(Reservation, fields, values(series_id), returning=True)
            line_ids = _insert_rows(ReservationLine, line_fields, lines(ids), returning=True)
            _insert_rows(Occupancy, occupancy_fields, occupancies(ids, line_ids), returning=False)
            _insert_rows(ReservationEvent, event_fields, events(ids), returning=False)
    except IntegrityError as exc:
        # As in _write_holds: another transaction booked one of these resources for an overlapping span
        # (PostgreSQL's exclusion constraint). Unreachable under the type locks, a guard for every other
        # path. No savepoint is needed: the caller's transaction block is left with this error, undoing all.
        if connection.vendor == "postgresql" and getattr(exc.__cause__, "sqlstate", None) != "23P01":
            raise
        raise Conflict(
            "A resource was booked for one of these times a moment ago; try again.", code="resource_booked"
        ) from None
    series.pk = series_id
    series._state.adding = False
    series._state.db = connection.alias
    made = []
    for pk, row in zip(ids, values(series_id), strict=True):
        reservation = Reservation(
            pk=pk, **{f"{f}_id" if f in _KEYS else f: v for f, v in zip(fields, row, strict=True)}
        )
        # As bulk_create left them: the center, patron and series loaded, so pages listing them need no reads.
        reservation.center, reservation.patron, reservation.series = place, patron, series
        reservation._state.adding = False
        reservation._state.db = connection.alias
        made.append(reservation)
    return made


_KEYS = frozenset({"library", "center", "patron", "series", "operator"})


_TAKEN = frozenset({Code.RESOURCE_BOOKED, Code.RESOURCE_BUFFER, Code.RESOURCE_OUT_OF_SERVICE})


def _substitutes(
    place: Branch,
    wanted: Sequence[LineRequest],
    reasons: Sequence[Reason],
    start: dt.datetime,
    end: dt.datetime,
    known: _Known,
) -> dict[int, Resource]:
    """For each specific line whose resource is taken, a free resource of the same type at the center
    (not a kit), free as ``queries.free_resources`` would say. Worked out from the series' busy intervals
    read once; the candidates come with the units, read once per series (or here, when not given)."""
    taken_lines = {int(r.details["line"]) for r in reasons if r.code in _TAKEN and "line" in r.details}
    taken_ids = {int(r.details["resource_id"]) for r in reasons if r.code in _TAKEN and "resource_id" in r.details}
    taken_lines |= {i for i, line in enumerate(wanted) if line.resource is not None and line.resource.pk in taken_ids}
    in_request = {line.resource.pk for line in wanted if line.resource is not None}
    found: dict[int, Resource] = {}
    for index in sorted(taken_lines):
        resource = wanted[index].resource
        if resource is None or resource.center_id != place.pk:
            continue
        kind = resource.resource_type
        if known.candidates is None:
            type_ids = sorted({u[1] for u in known.units})
            known.candidates = list(
                Resource.objects.filter(center_id=place.pk, resource_type_id__in=type_ids, parts__isnull=True)
                .select_related("resource_type")
                .order_by("name", "identifier")
            )
        span = rules.blocked_span(start, end, kind.buffer_before_minutes, kind.buffer_after_minutes)
        units, holds = queries.unit_view(kind.pk, known.units, known.busy.close_in(*span))
        used = in_request | {r.pk for r in found.values()}
        preferred = [r for r in known.candidates if r.resource_type_id == kind.pk and r.pk not in used]
        # The first free in name order, as rules.span_availability would list them, probing no further.
        chosen = rules.first_free(units, holds, *span, [r.pk for r in preferred])
        if chosen is not None:
            found[index] = next(r for r in preferred if r.pk == chosen)
    return found


def cancel_series(*, actor: audit.Actor, from_occurrence: Reservation, comment: str = "") -> list[Reservation]:
    """Cancel this occurrence and the rest of its series ("this and the following").

    Occurrences that have started are frozen and left as they are; so are ones already cancelled,
    rejected or checked out. Returns the occurrences cancelled.
    """
    note = _text(comment, "comment", COMMENT_MAX)
    with transaction.atomic():
        occurrence = _lock_reservation(from_occurrence)
        if occurrence.series_id is None:
            raise Conflict("This reservation is not part of a series; cancel it on its own.", code="not_in_series")
        now = clock.now()
        if occurrence.starts_at <= now:
            raise Conflict(
                "This occurrence has started and is kept as it is; cancel from a later occurrence.",
                code="occurrence_in_past",
            )
        cancellable = [s.value for s in (State.PENDING_APPROVAL, State.RESERVED)]
        rest = list(
            Reservation.objects.select_for_update(of=("self",))
            .select_related("patron")
            .filter(series_id=occurrence.series_id, starts_at__gte=occurrence.starts_at, state__in=cancellable)
            .order_by("starts_at", "pk")
        )
        for reservation in rest:
            _move(actor, reservation, Step.CANCEL, note or "Cancelled with the rest of the series.")
    return rest


# --- the desk: steps the circulation app takes, under its transaction -----------------------------------


def lock_reservation(reservation: Reservation | int) -> Reservation:
    """Lock a reservation's row for a desk step; the caller's transaction holds it."""
    return _lock_reservation(reservation)


def require_step(reservation: Reservation, step: Step) -> State:
    """Where ``step`` leads, or ``Conflict`` (``transition_not_allowed``) when the table does not allow it."""
    return _target(reservation, step)


def take_step(*, actor: audit.Actor, reservation: Reservation, step: Step, comment: str = "") -> str:
    """Apply one row of the transition table to a reservation the caller has locked; returns the old state."""
    return _move(actor, reservation, step, _text(comment, "comment", COMMENT_MAX))


def assign_resources(*, reservation: Reservation, chosen: Mapping[int, Sequence[Resource]]) -> None:
    """Give lines concrete resources at pickup: ``chosen`` maps a line's id to the resources handed out.

    A "one of this type" line gets as many resources of exactly its type as it asked for; its type hold
    becomes one row per resource. A specific line may get another resource of the same type (a
    substitute). Checked under the type locks against everything else booked: a resource promised to
    someone else for any part of the span is refused (``resource_booked``). The caller has locked the
    reservation.
    """
    lines = {line.pk: line for line in reservation.lines.select_related("resource__resource_type", "resource_type")}
    errors: dict[str, list[str]] = {}
    changes: list[tuple[ReservationLine, list[Resource]]] = []
    for line_id, resources in chosen.items():
        line = lines[line_id]
        kind = line.resource.resource_type if line.resource is not None else line.resource_type
        assert kind is not None  # noqa: S101 - a line names one or the other
        if line.resource is not None and [r.pk for r in resources] == [line.resource.pk]:
            continue
        field = f"lines.{line_id}"
        if len(resources) != line.quantity:
            errors[field] = [f"Hand out {line.quantity} {kind.name}; {len(resources)} scanned."]
        elif any(r.resource_type_id != kind.pk or r.center_id != reservation.center_id for r in resources):
            errors[field] = [f"Hand out {kind.name} from this center only."]
        elif line.resource is not None and (line.resource.parts.exists() or resources[0].parts.exists()):
            errors[field] = ["A kit cannot be swapped for another; check out the kit reserved."]
        else:
            changes.append((line, list(resources)))
    if errors:
        raise ValidationFailed(errors)
    if not changes:
        return
    _lock_types({resources[0].resource_type_id for _, resources in changes})  # each line's own type, checked above
    old = {
        row.line_id: row for row in reservation.occupancies.filter(active=True, line_id__in=[c[0].pk for c in changes])
    }
    holds: list[_Hold] = []
    for line, resources in changes:
        row = old[line.pk]
        for resource in resources:
            holds.append(
                _Hold(0, resource, resource.resource_type, 1, row.blocked_from, row.blocked_until, str(resource))
            )
    reasons = [
        r
        for r in _item_reasons(holds, reservation.center, _patron(reservation), reservation.starts_at, portal=False)
        if r.code == Code.RESOURCE_OUT_OF_SERVICE
    ]
    # Other reservations only: the rows being replaced belong to this one.
    reasons += _availability_reasons(
        holds, reservation.center, reservation.starts_at, reservation.ends_at, reservation.pk
    )
    if reasons:
        raise Refused(
            f"These resources cannot be handed out: {len(reasons)} reason(s).",
            [{**r.as_dict(), "overridable": "false"} for r in reasons],
        )
    for line, resources in changes:
        row = old[line.pk]
        if line.resource is not None:
            line.resource = resources[0]
            line.save(update_fields=["resource"])
        row.delete()
        try:
            with transaction.atomic():
                Occupancy.objects.bulk_create(
                    Occupancy(
                        reservation=reservation, line=line, resource=r, resource_type_id=r.resource_type_id,
                        center_id=reservation.center_id, quantity=1, blocked_from=row.blocked_from,
                        blocked_until=row.blocked_until, active=True,
                    )
                    for r in resources
                )  # fmt: skip
        except IntegrityError:
            raise Conflict(
                "One of these resources was booked a moment ago; scan another.", code="resource_booked"
            ) from None


def release_resources(*, reservation: Reservation, resource_ids: Iterable[int]) -> None:
    """Free resources returned early (a partial check-in): their rows stop blocking others at once."""
    reservation.occupancies.filter(active=True, resource_id__in=list(resource_ids)).update(active=False)


def release_no_shows(*, actor: audit.Actor, now: dt.datetime | None = None) -> list[int]:
    """Mark reserved reservations not picked up within the center's ``no_show_minutes`` after their start
    as no-shows, freeing their resources. Each in its own transaction under the reservation's lock and
    checked again there, so two workers running at once release each reservation once."""
    now = now or clock.now()
    candidates = list(
        Reservation.objects.filter(state=State.RESERVED, starts_at__lte=now).values_list("pk", "center_id", "starts_at")
    )
    policies = {row.center_id: queries.to_policy(row) for row in CenterPolicy.objects.filter(
        center_id__in={c for _, c, _ in candidates}
    )}  # fmt: skip
    released = []
    for pk, center_id, starts_at in candidates:
        held = dt.timedelta(minutes=policies.get(center_id, rules.Policy()).no_show_minutes)
        if now < starts_at + held:
            continue
        with transaction.atomic():
            reservation = _lock_reservation(pk)
            if reservation.state != State.RESERVED:
                continue  # picked up, cancelled or released by another worker meanwhile
            _move(
                actor,
                reservation,
                Step.MARK_NO_SHOW,
                f"Not picked up within {int(held.total_seconds() // 60)} minutes.",
            )
            released.append(pk)
    return released
