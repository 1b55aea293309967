"""The patron's own allocations: a reservation or checkout page, edit, cancel, copy, and My Data.

Every object is loaded through ``own_reservation`` / ``own_checkout``, which filter by the signed-in patron:
another patron's reservation, series or checkout is "not found", exactly like one that does not exist.
The rules (what may be edited, cancelled or copied) live in ``reservations`` and ``circulation``; these
views call their services and show the reasons they give.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils import dates, timezone

from patronage.circulation import services as circulation
from patronage.circulation.models import Checkout
from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError, NotFound, Refused, ValidationFailed
from patronage.patrons.models import Patron
from patronage.privacy import export
from patronage.reservations import queries as reservation_queries
from patronage.reservations import rules as reservation_rules
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation, ReservationEvent, ReservationLine
from patronage.reservations.rules import State, Step
from patronage.resources import queries as catalog
from patronage.resources.models import Resource, ResourceType

from . import PortalView, client_ip, error_summary, field

STATE_WORDS = {
    State.PENDING_APPROVAL: "Awaits approval",
    State.RESERVED: "Reserved",
    State.CHECKED_OUT: "Checked out",
    State.COMPLETED: "Completed",
    State.CANCELLED: "Cancelled",
    State.REJECTED: "Not approved",
    State.NO_SHOW: "Not picked up",
}
# What happened, in the patron's words: (from state, to state) -> sentence. "" is the creation.
EVENT_WORDS = {
    ("", State.PENDING_APPROVAL): "Requested, waiting for staff approval",
    ("", State.RESERVED): "Reserved",
    (State.PENDING_APPROVAL, State.RESERVED): "Approved",
    (State.PENDING_APPROVAL, State.REJECTED): "Not approved",
    (State.PENDING_APPROVAL, State.CANCELLED): "Cancelled",
    (State.RESERVED, State.CANCELLED): "Cancelled",
    (State.RESERVED, State.CHECKED_OUT): "Picked up",
    (State.RESERVED, State.NO_SHOW): "Not picked up in time; the resources were released",
    (State.CHECKED_OUT, State.COMPLETED): "Returned",
}

NOT_EDITABLE = "This reservation can no longer be changed."
NO_SUCH_RESERVATION = "There is no such reservation among yours."
CHANGED_WORDS = {
    "starts_at": "pickup time",
    "ends_at": "return time",
    "lines": "resources",
    "note": "note to staff",
    "pickup_option": "pickup option",
}


def _field_order(name: str) -> int:
    order = list(CHANGED_WORDS)
    return order.index(name) if name in order else len(order)


def actor_for(request: HttpRequest, patron: Patron) -> audit.Actor:
    """The patron acting on their own account, through the portal."""
    return audit.Actor.patron(patron.pk, client_ip(request))


def zone_of(patron: Patron) -> ZoneInfo:
    return ZoneInfo(patron.library.time_zone)


def when(value: dt.datetime, zone: ZoneInfo) -> str:
    """``value`` in ``zone`` as the portal's lists say a time, "Mon 10 May 2027, 10:00": the same text as the
    template filter ``date:"D j M Y, H:i"`` under that zone, made without the template machinery (a list
    shows dozens of them)."""
    local = value.astimezone(zone)
    day, month = dates.WEEKDAYS_ABBR[local.weekday()], dates.MONTHS_3[local.month].title()
    return f"{day} {local.day} {month} {local.year:04d}, {local.hour:02d}:{local.minute:02d}"


# --- loading: only the signed-in patron's own -----------------------------------------------------------


def own_reservation(patron: Patron, reservation_id: object) -> Reservation:
    """The patron's reservation ``reservation_id``, or ``NotFound`` (also for anyone else's)."""
    found = (
        Reservation.objects.select_related("center", "series")
        .filter(pk=_int(reservation_id), patron_id=patron.pk, library_id=patron.library_id)
        .first()
    )
    if found is None:
        raise NotFound(NO_SUCH_RESERVATION)
    return found


def own_checkout(patron: Patron, checkout_id: object) -> Checkout:
    """The patron's checkout ``checkout_id``, or ``NotFound`` (also for anyone else's)."""
    found = (
        Checkout.objects.select_related("center", "reservation")
        .filter(pk=_int(checkout_id), patron_id=patron.pk, library_id=patron.library_id)
        .first()
    )
    if found is None:
        raise NotFound("There is no such checkout among yours.")
    return found


def _int(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        return 0


def line_label(line: ReservationLine) -> str:
    if line.resource is not None:
        return line.resource.name
    kind = line.resource_type.name if line.resource_type else "resource"
    return f"Any {line.quantity} of {kind}" if line.quantity != 1 else f"Any one of {kind}"


def what_of(lines: Iterable[ReservationLine]) -> str:
    """Resources in one line: the lines' labels, or "No resources"."""
    return "; ".join(line_label(line) for line in lines) or "No resources"


# --- what the patron may do to a reservation, as the rules allow ------------------------------------------


@dataclass(frozen=True)
class Allowed:
    edit: bool
    edit_reason: str
    cancel: bool
    cancel_rest: bool


def allowed(reservation: Reservation, now: dt.datetime) -> Allowed:
    state = State(reservation.state)
    started = reservation.starts_at <= now
    may_cancel = reservation_rules.next_state(state, Step.CANCEL) is not None
    if state in reservation_rules.EDITABLE_STATES and not started:
        edit, reason = True, ""
    elif state == State.RESERVED:
        reason = (
            "An approved reservation can be cancelled, not changed: cancel it and make a new one."
            if reservation.channel == Reservation.Channel.PORTAL
            else "This reservation can be cancelled, not changed: cancel it and make a new one."
        )
        edit = False
    else:
        edit, reason = False, ""
    # A series' occurrences that have started are frozen (the reservations rules); others may be cancelled.
    cancel = may_cancel and not (reservation.series_id is not None and started)
    return Allowed(
        edit=edit, edit_reason=reason, cancel=cancel, cancel_rest=cancel and reservation.series_id is not None
    )


def history(events: Iterable[ReservationEvent], zone: ZoneInfo) -> list[dict[str, Any]]:
    """The reservation's events in plain words; staff appear as "library staff", never by account name."""
    rows = []
    for event in events:
        comment = event.comment
        if event.from_state == event.to_state:
            # An edit's comment lists the changed fields ("Changed: ends_at, lines."): say them in words.
            names = sorted(comment.removeprefix("Changed:").strip(" .").split(", "), key=_field_order)
            text = "Changed: " + ", ".join(CHANGED_WORDS.get(n, n.replace("_", " ")) for n in names if n)
            comment = ""
        else:
            key = (State(event.from_state) if event.from_state else "", State(event.to_state))
            text = EVENT_WORDS.get(key, STATE_WORDS.get(State(event.to_state), event.to_state))
        who = "by you" if event.channel == Reservation.Channel.PORTAL else "by library staff"
        if event.channel == "system":
            who = "automatically"
        rows.append({"at": when(event.at, zone), "text": text, "who": who, "comment": comment})
    return rows


# --- pages --------------------------------------------------------------------------------------------------


class MineView(PortalView):
    """A page about the patron's own things: rendered in the library's time zone."""

    def patron(self) -> Patron:
        return self.signed_in().patron

    def actor(self) -> audit.Actor:
        return actor_for(self.request, self.patron())

    def local(self, template: str, context: Mapping[str, Any], status: int = 200) -> HttpResponse:
        zone = zone_of(self.patron())
        with timezone.override(zone):
            return self.page(template, {"zone": zone.key, **context}, status)

    def reservation_url(self, reservation_id: int) -> str:
        return self.url("portal:reservation", reservation_id=reservation_id)


class ReservationView(MineView):
    def get(self, request: HttpRequest, library: str, reservation_id: int) -> HttpResponse:
        patron = self.patron()
        found = reservation_queries.own_reservation_page(_int(reservation_id), patron.pk, patron.library_id)
        if found is None:
            raise NotFound(NO_SUCH_RESERVATION)
        return self.local("portal/mine/reservation.html", self.details(found))

    def details(self, found: reservation_queries.OwnReservation) -> dict[str, Any]:
        reservation = found.reservation
        zone = zone_of(self.patron())
        return {
            "r": reservation,
            "state_words": STATE_WORDS[State(reservation.state)],
            "lines": [line_label(line) for line in found.lines],
            "events": history(found.events, zone),
            "may": allowed(reservation, clock.now()),
            "checkout": {"pk": found.checkout_id} if found.checkout_id is not None else None,
            "later": found.later,
        }


class CancelView(MineView):
    """Cancel one reservation (``rest=False``) or it and the series' later occurrences, after a confirmation."""

    rest = False

    def get(self, request: HttpRequest, library: str, reservation_id: int) -> HttpResponse:
        reservation = own_reservation(self.patron(), reservation_id)
        if self.rest and reservation.series_id is None:
            raise NotFound("This reservation does not repeat.")
        return self._page(reservation)

    def _page(self, reservation: Reservation, problem: str = "", status: int = 200) -> HttpResponse:
        later = []
        if self.rest:
            later = list(
                Reservation.objects.filter(
                    series_id=reservation.series_id, starts_at__gte=reservation.starts_at,
                    state__in=[State.PENDING_APPROVAL, State.RESERVED],
                ).order_by("starts_at")[:200]
            )  # fmt: skip
        context = {"r": reservation, "rest": self.rest, "later": later, "problem": problem}
        return self.local("portal/mine/cancel.html", context, status)

    def post(self, request: HttpRequest, library: str, reservation_id: int) -> HttpResponse:
        reservation = own_reservation(self.patron(), reservation_id)
        try:
            if self.rest:
                if reservation.series_id is None:
                    raise NotFound("This reservation does not repeat.")
                done = reservations.cancel_series(actor=self.actor(), from_occurrence=reservation)
                messages.success(request, f"Cancelled {len(done)} reservation(s): this one and the later ones.")
            else:
                reservations.cancel_reservation(actor=self.actor(), reservation=reservation)
                messages.success(request, "Your reservation is cancelled.")
        except Conflict as exc:
            return self._page(reservation, exc.message, status=exc.status)
        return HttpResponseRedirect(self.reservation_url(reservation.pk))


class EditView(MineView):
    """Change the times, remove resources or add some; the reservations rules decide and give reasons."""

    def get(self, request: HttpRequest, library: str, reservation_id: int) -> HttpResponse:
        reservation = own_reservation(self.patron(), reservation_id)
        zone = zone_of(self.patron())
        values = {
            "starts_at": reservation.starts_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
            "ends_at": reservation.ends_at.astimezone(zone).strftime("%Y-%m-%dT%H:%M"),
        }
        lines = list(reservation.lines.select_related("resource", "resource_type"))
        may = allowed(reservation, clock.now())
        # Said before the patron fills the form in; the service refuses the same on submit.
        reasons = [] if may.edit else [{"code": "not_editable", "message": may.edit_reason or NOT_EDITABLE}]
        return self._page(reservation, lines, values, {}, reasons=reasons)

    def _choices(self, reservation: Reservation) -> tuple[list[Resource], list[ResourceType]]:
        """What the patron may add: the portal catalog of this center, as on the booking pages (visible
        types that need no authorization the patron lacks)."""
        patron = self.patron()
        shown = catalog.portal_catalog(
            patron.library_id, reservation.center_id, patron.pk, clock.today(zone_of(patron))
        )
        types = sorted((shown.types[pk] for pk in shown.reservable), key=lambda t: (t.name, t.pk))
        resources = sorted(
            catalog.portal_resources(shown, reservation.center_id), key=lambda r: (r.resource_type.name, r.name, r.pk)
        )
        return resources, types

    def _page(
        self,
        reservation: Reservation,
        lines: Sequence[ReservationLine],
        values: Mapping[str, str],
        errors: Mapping[str, Sequence[str]],
        reasons: Sequence[Mapping[str, str]] = (),
        status: int = 200,
    ) -> HttpResponse:
        resources, types = self._choices(reservation)
        time_hint = f"Date and time in {zone_of(self.patron()).key}."
        fields = [
            field("starts_at", "Pickup", errors, kind="datetime-local", value=values.get("starts_at", ""), hint=time_hint),
            field("ends_at", "Return", errors, kind="datetime-local", value=values.get("ends_at", ""), hint=time_hint),
        ]  # fmt: skip
        extra = [
            field("add_resource", "Add a specific resource", errors, required=False),
            field("add_type", "Add one of a type", errors, required=False),
            field("add_quantity", "How many of that type", errors, value=values.get("add_quantity", "1"), required=False),
            field("lines", "Resources", errors, required=False),
        ]  # fmt: skip
        rows = []
        for line in lines:
            rows.append(
                {
                    "id": line.pk,
                    "label": line_label(line),
                    "is_type": line.resource is None,
                    "quantity": values.get(f"quantity_{line.pk}", str(line.quantity)),
                    "removed": f"remove_{line.pk}" in values,
                }
            )
        context = {
            "r": reservation,
            "fields": fields,
            "extra": {f["name"]: f for f in extra},
            "rows": rows,
            "resources": resources,
            "types": types,
            "chosen_resource": values.get("add_resource", ""),
            "chosen_type": values.get("add_type", ""),
            "errors": error_summary(errors, [*fields, *extra]),
            "reasons": reasons,
        }
        return self.local("portal/mine/edit.html", context, status)

    def post(self, request: HttpRequest, library: str, reservation_id: int) -> HttpResponse:
        reservation = own_reservation(self.patron(), reservation_id)
        lines = list(reservation.lines.select_related("resource", "resource_type"))
        posted = request.POST
        values = {k: str(posted.get(k, "")).strip()[:40] for k in ("starts_at", "ends_at", "add_resource", "add_type")}
        values["add_quantity"] = str(posted.get("add_quantity", "1")).strip()[:6] or "1"
        wanted: list[dict[str, Any]] = []
        for line in lines:
            if posted.get(f"remove_{line.pk}"):
                values[f"remove_{line.pk}"] = "1"
                continue
            if line.resource is not None:
                wanted.append({"resource": line.resource_id})
            else:
                quantity = str(posted.get(f"quantity_{line.pk}", line.quantity)).strip()[:6]
                values[f"quantity_{line.pk}"] = quantity
                wanted.append({"resource_type": line.resource_type_id, "quantity": quantity})
        resource_index = type_index = None
        if values["add_resource"]:
            resource_index = len(wanted)
            wanted.append({"resource": values["add_resource"]})
        if values["add_type"]:
            type_index = len(wanted)
            wanted.append({"resource_type": values["add_type"], "quantity": values["add_quantity"]})
        try:
            reservations.edit_reservation(
                actor=self.actor(), reservation=reservation, starts_at=values["starts_at"] or None,
                ends_at=values["ends_at"] or None, lines=wanted,
            )  # fmt: skip
        except (ValidationFailed, FieldError) as exc:
            errors = _line_errors(exc.errors, resource_index, type_index)
            return self._page(reservation, lines, values, errors, status=400)
        except Refused as exc:
            return self._page(reservation, lines, values, {}, reasons=exc.reasons, status=409)
        except Conflict as exc:
            return self._page(
                reservation, lines, values, {}, reasons=[{"code": exc.code, "message": exc.message}], status=409
            )
        messages.success(request, "Your reservation is changed.")
        return HttpResponseRedirect(self.reservation_url(reservation.pk))


def _line_errors(
    errors: Mapping[str, Sequence[str]], resource_index: int | None, type_index: int | None
) -> dict[str, list[str]]:
    """Errors on ``lines.N.*`` moved to the field the patron filled: the added resource or type, else the list."""
    shown: dict[str, list[str]] = {}
    for name, texts in errors.items():
        target = name
        if name.startswith("lines."):
            index = _int(name.split(".")[1])
            if index == resource_index:
                target = "add_resource"
            elif index == type_index:
                target = "add_quantity" if name.endswith(".quantity") else "add_type"
            else:
                target = "lines"
        shown.setdefault(target, []).extend(texts)
    return shown


class CheckoutView(MineView):
    def get(self, request: HttpRequest, library: str, checkout_id: int) -> HttpResponse:
        checkout = own_checkout(self.patron(), checkout_id)
        return self.local("portal/mine/checkout.html", self.details(checkout))

    def details(self, checkout: Checkout) -> dict[str, Any]:
        items = list(checkout.items.select_related("resource"))
        now = clock.now()
        return {
            "c": checkout,
            "items": items,
            "late": checkout.completed_at is None and checkout.due_at < now,
            "may_copy": checkout.completed_at is not None,
        }


class CopyCheckoutView(MineView):
    """Book again what a completed checkout handed out, for new pickup and return times."""

    def _page(
        self,
        checkout: Checkout,
        values: Mapping[str, str],
        errors: Mapping[str, Sequence[str]],
        reasons: Sequence[Mapping[str, str]] = (),
        status: int = 200,
    ) -> HttpResponse:
        hint = f"Date and time in {zone_of(self.patron()).key}."
        fields = [
            field("starts_at", "New pickup", errors, kind="datetime-local", value=values.get("starts_at", ""), hint=hint),
            field("ends_at", "New return", errors, kind="datetime-local", value=values.get("ends_at", ""), hint=hint),
        ]  # fmt: skip
        items = list(checkout.items.select_related("resource"))
        context = {
            "c": checkout,
            "items": items,
            "fields": fields,
            "errors": error_summary(errors, fields),
            "reasons": reasons,
        }
        return self.local("portal/mine/copy.html", context, status)

    def get(self, request: HttpRequest, library: str, checkout_id: int) -> HttpResponse:
        return self._page(own_checkout(self.patron(), checkout_id), {}, {})

    def post(self, request: HttpRequest, library: str, checkout_id: int) -> HttpResponse:
        checkout = own_checkout(self.patron(), checkout_id)
        values = {k: str(request.POST.get(k, "")).strip()[:40] for k in ("starts_at", "ends_at")}
        missing = {k: [f"Enter the new {label} date and time."] for k, label in (("starts_at", "pickup"), ("ends_at", "return")) if not values[k]}  # fmt: skip
        if missing:
            return self._page(checkout, values, missing, status=400)
        try:
            made = circulation.copy_checkout(
                actor=self.actor(), checkout=checkout, starts_at=values["starts_at"], ends_at=values["ends_at"],
                channel=Reservation.Channel.PORTAL,
            )  # fmt: skip
        except (ValidationFailed, FieldError) as exc:
            return self._page(checkout, values, exc.errors, status=400)
        except Refused as exc:
            return self._page(checkout, values, {}, reasons=exc.reasons, status=409)
        except Conflict as exc:
            return self._page(checkout, values, {}, reasons=[{"code": exc.code, "message": exc.message}], status=409)
        done = "It awaits approval by staff." if made.state == State.PENDING_APPROVAL else "It is reserved."
        messages.success(request, f"Your new reservation is made. {done}")
        return HttpResponseRedirect(self.reservation_url(made.pk))


class MyDataView(MineView):
    """The patron downloads everything the library holds about them: the export staff have."""

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        return self.local("portal/mine/my_data.html", {})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        name, content = export.export_archive(actor=self.actor(), patron=self.patron())
        response = HttpResponse(content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response
