"""The reservation pages: per center a list, a reservation with its events, create, edit, approve,
reject, cancel, and the availability search."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core import clock
from patronage.core.errors import FieldError, NotFound, Refused
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.patrons.access import PatronNotFound, patron_by_barcode_for_staff, patron_for_staff
from patronage.patrons.models import Patron
from patronage.reservations import queries as availability
from patronage.reservations import services as booking
from patronage.reservations.models import Reservation
from patronage.reservations.rules import EDITABLE_STATES, State, Step, next_state
from patronage.resources.models import Resource, ResourceType

from ... import fields
from ...admin.views.base import read_post
from .. import specs
from .base import DESK, LendingForm, LendingView, center_choices, resource_choices, type_choices

AVAILABILITY_CODES = {"resource_booked", "resource_buffer", "type_units_unavailable"}


class IndexView(LendingView):
    """Each checkout center, with its upcoming reservations and links to its pages."""

    permission = DESK
    tab = "reservations"

    def get(self, request: HttpRequest) -> HttpResponse:
        self.enter()
        now = clock.now()
        rows = []
        for place in self.centers():
            upcoming = Reservation.objects.filter(center=place, ends_at__gte=now)
            rows.append(
                {
                    "center": place,
                    "pending": upcoming.filter(state=State.PENDING_APPROVAL).count(),
                    "reserved": upcoming.filter(state=State.RESERVED).count(),
                }
            )
        context = self.admin_context("Reservations") | {
            "rows": rows,
            "may_configure": self.can(Permission.CONFIGURE_LIBRARY),
        }
        return render(request, "staff/lending/index.html", context)


class CenterReservationsView(LendingView):
    """A center's reservations: pending approval first, then by start; upcoming unless dates are given."""

    permission = DESK
    tab = "reservations"

    def get(self, request: HttpRequest, center_id: int) -> HttpResponse:
        self.enter()
        place = self.center(center_id)
        chosen = {spec.name: request.GET.get(spec.name, "").strip() for spec in specs.RESERVATION_FILTERS}
        errors: dict[str, list[str]] = {}
        found = Reservation.objects.filter(center=place).select_related("patron")
        if chosen["state"] in {s.value for s in State}:
            found = found.filter(state=chosen["state"])
        zone = self.zone()
        bounds: dict[str, dt.datetime] = {}
        for name in ("date_from", "date_to"):
            if chosen[name]:
                try:
                    day = dt.date.fromisoformat(chosen[name])
                except ValueError:
                    errors[name] = ["Write the date as YYYY-MM-DD, e.g. 2027-05-04."]
                    continue
                if name == "date_to":
                    day += dt.timedelta(days=1)
                bounds[name] = dt.datetime.combine(day, dt.time(), tzinfo=zone)
        if "date_from" in bounds:
            found = found.filter(ends_at__gt=bounds["date_from"])
        elif not chosen["date_to"]:
            found = found.filter(ends_at__gte=clock.now())
        if "date_to" in bounds:
            found = found.filter(starts_at__lt=bounds["date_to"])
        if chosen["patron"]:
            found = found.filter(patron_id=int(chosen["patron"]) if chosen["patron"].isdigit() else -1)
        pending_first = Case(
            When(state=State.PENDING_APPROVAL, then=Value(0)), default=Value(1), output_field=IntegerField()
        )
        found = found.annotate(pending_first=pending_first).order_by("pending_first", "starts_at", "id")
        states = (("", "Any"), *((s.value, s.label) for s in State))
        filters = fields.bind(specs.RESERVATION_FILTERS, chosen, errors, choices={"state": states})
        context = self.admin_context(f"Reservations at {place.name}") | {
            "center": place,
            "filters": filters,
            "errors": fields.error_summary(errors, filters),
            "reservations": list(found[:200]),
            "zone": zone.key,
            "may_configure": self.can(Permission.CONFIGURE_LIBRARY),
        }
        return render(request, "staff/lending/reservations.html", context)


class _ReservationPage(LendingView):
    permission = DESK
    tab = "reservations"
    reservation: Reservation | None = None

    def load(self) -> Reservation:
        self.enter()
        found = (
            Reservation.objects.filter(library_id=self.library_id, pk=self.kwargs["reservation_id"])
            .select_related("patron", "center", "center__library")
            .first()
        )
        if found is None:
            raise NotFound("There is no such reservation here.")
        self.reservation = found
        return found

    def detail_url(self) -> str:
        return reverse("staff:lending:reservation", kwargs={"reservation_id": self.kwargs["reservation_id"]})

    def back_url(self) -> str | None:
        return self.detail_url()


class ReservationDetailView(_ReservationPage):
    def get(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        item = self.load()
        lines = item.lines.select_related("resource", "resource_type")
        context = self.admin_context(f"Reservation {item.pk}") | {
            "r": item,
            "lines": lines,
            "events": item.events.all(),
            "zone": self.zone().key,
            "may_approve": next_state(item.state, Step.APPROVE) is not None,
            "may_cancel": next_state(item.state, Step.CANCEL) is not None,
            "may_edit": item.state in EDITABLE_STATES,
            "may_override": self.can(Permission.OVERRIDE_RESERVATION_RULES),
            "refusal": None,
        }
        return render(request, "staff/lending/reservation.html", context)


class ReservationStepView(_ReservationPage):
    """approve, reject or cancel, posted from the reservation's page."""

    step = ""

    def post(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        item = self.load()
        comment = request.POST.get("comment", "")
        if self.step == "approve":
            override = request.POST.get("override_comment", "").strip() or None
            try:
                booking.approve_reservation(
                    actor=self.actor, reservation=item, comment=comment, override_comment=override
                )
            except Refused as exc:
                return refusal_page(self, exc, item)
            messages.success(request, f"Reservation {item.pk} approved.")
        elif self.step == "reject":
            booking.reject_reservation(actor=self.actor, reservation=item, comment=comment)
            messages.success(request, f"Reservation {item.pk} rejected.")
        else:
            booking.cancel_reservation(actor=self.actor, reservation=item, comment=comment)
            messages.success(request, f"Reservation {item.pk} cancelled; its resources are free again.")
        return HttpResponseRedirect(self.detail_url())


def refusal_page(view: _ReservationPage, exc: Refused, item: Reservation) -> HttpResponse:
    context = view.admin_context(f"Reservation {item.pk}") | {
        "r": item,
        "lines": item.lines.select_related("resource", "resource_type"),
        "events": item.events.all(),
        "zone": view.zone().key,
        "refusal": {"message": exc.message, "reasons": exc.reasons},
        "may_override": view.can(Permission.OVERRIDE_RESERVATION_RULES),
    }
    return render(view.request, "staff/lending/reservation.html", context, status=409)


# --- create and edit -----------------------------------------------------------------------------------


def _line_specs() -> tuple[fields.FieldSpec, ...]:
    return tuple(spec for index in range(specs.LINE_COUNT) for spec in specs.line_specs(index))


class _ReservationForm(LendingForm):
    permission = DESK
    tab = "reservations"
    template = "staff/lending/reservation_form.html"
    refusal: dict[str, Any] | None = None
    alternatives: list[dict[str, Any]]

    def base_specs(self) -> tuple[fields.FieldSpec, ...]:
        raise NotImplementedError

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        extra = specs.OVERRIDE if self.can(Permission.OVERRIDE_RESERVATION_RULES) else ()
        return (*self.base_specs(), *_line_specs(), *extra)

    def choices(self) -> Mapping[str, fields.Choices]:
        found: dict[str, fields.Choices] = {
            "center": center_choices(self.centers(), empty="—"),
            "pickup_option": tuple(Reservation.PickupOption.choices),
        }
        types = type_choices(self.library_id)
        resources = resource_choices(self.library_id)
        for index in range(specs.LINE_COUNT):
            found[f"lines.{index}.resource"] = resources
            found[f"lines.{index}.resource_type"] = types
        return found

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        return {
            "refusal": self.refusal,
            "alternatives": getattr(self, "alternatives", []),
            "zone": self.zone().key,
            "line_count": specs.LINE_COUNT,
        }

    def lines(self, posted: Mapping[str, str]) -> list[dict[str, str]]:
        found = []
        for index in range(specs.LINE_COUNT):
            line = {k: posted.get(f"lines.{index}.{k}", "").strip() for k in ("resource", "resource_type", "quantity")}
            if line["resource"] or line["resource_type"]:
                found.append({k: v for k, v in line.items() if v})
        return found

    def refused(self, exc: Refused, place: Branch | None, posted: Mapping[str, str]) -> HttpResponse:
        """The form again with every reason, and for availability the free resources of the same types."""
        self.refusal = {"message": exc.message, "reasons": exc.reasons}
        self.alternatives = []
        codes = {r.get("code") for r in exc.reasons}
        if place is not None and codes & AVAILABILITY_CODES:
            self.alternatives = free_alternatives(place, posted, self.lines(posted), self.zone())
        return self.render_form(posted, {}, status=409)


def _instant(text: str, zone: Any) -> dt.datetime | None:
    """The typed local time as an instant, or None when it is not one (the page says what to type)."""
    try:
        return booking.parse_instant(text, "when", str(zone))
    except FieldError:
        return None


def free_alternatives(
    place: Branch, posted: Mapping[str, str], lines: list[dict[str, str]], zone: Any
) -> list[dict[str, Any]]:
    starts, ends = _instant(posted.get("starts_at", ""), zone), _instant(posted.get("ends_at", ""), zone)
    if starts is None or ends is None or ends <= starts:
        return []
    type_ids: list[int] = []
    for line in lines:
        if line.get("resource_type", "").isdigit():
            type_ids.append(int(line["resource_type"]))
        elif line.get("resource", "").isdigit():
            found = Resource.objects.filter(pk=int(line["resource"]), library_id=place.library_id).first()
            if found is not None:
                type_ids.append(found.resource_type_id)
    shown = []
    for kind in ResourceType.objects.filter(pk__in=type_ids, library_id=place.library_id, centers=place):
        free = availability.type_availability(place, kind, starts, ends)
        shown.append({"type": kind, "free_units": free.free_units, "resources": free.free_resources})
    return shown


class ReservationCreateView(_ReservationForm):
    def base_specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.NEW_RESERVATION

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        return (
            super().page_context(values, errors)
            | self.admin_context("New reservation")
            | {
                "action": reverse("staff:lending:reservation-new"),
                "back_url": reverse("staff:lending:index"),
                "back_label": "reservations",
                "submit": "Reserve",
            }
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        self.enter()
        values = {k: request.GET.get(k, "") for k in ("patron", "center", "starts_at", "ends_at")}
        if request.GET.get("resource"):
            values["lines.0.resource"] = request.GET["resource"]
        values["pickup_option"] = Reservation.PickupOption.DESK
        return self.render_form(values, {})

    def find_patron(self, text: str) -> Patron:
        text = text.strip()
        if not text:
            raise FieldError("patron", "Give the patron's barcode or number.")
        try:
            return patron_by_barcode_for_staff(self.actor, self.library_id, text, DESK)
        except PatronNotFound:
            if not text.isdigit():
                raise FieldError("patron", f"No patron here has the barcode {text[:40]!r}.") from None
        try:
            return patron_for_staff(self.actor, text, DESK, library_id=self.library_id)
        except PatronNotFound:
            raise FieldError("patron", f"No patron here has the barcode or number {text[:40]!r}.") from None

    def post(self, request: HttpRequest) -> HttpResponse:
        self.enter()
        self.posted = read_post(request, self.specs())
        patron = self.find_patron(self.posted["patron"])
        place = self.center(self.posted["center"]) if self.posted["center"].isdigit() else None
        if place is None:
            raise FieldError("center", "Choose the checkout center.")
        try:
            made = booking.create_reservation(
                actor=self.actor, patron=patron, center=place, starts_at=self.posted["starts_at"],
                ends_at=self.posted["ends_at"], lines=self.lines(self.posted), title=self.posted["title"],
                note=self.posted["note"], pickup_option=self.posted["pickup_option"],
                delivery_location=self.posted["delivery_location"],
                override_comment=self.posted.get("override_comment", "").strip() or None,
            )  # fmt: skip
        except Refused as exc:
            return self.refused(exc, place, self.posted)
        messages.success(request, f"Reservation {made.pk} made for {patron.display_name}.")
        return HttpResponseRedirect(reverse("staff:lending:reservation", kwargs={"reservation_id": made.pk}))


class ReservationEditView(_ReservationForm):
    reservation: Reservation | None = None

    def base_specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.RESERVATION

    def load(self) -> Reservation:
        self.enter()
        found = (
            Reservation.objects.filter(library_id=self.library_id, pk=self.kwargs["reservation_id"])
            .select_related("patron", "center")
            .first()
        )
        if found is None:
            raise NotFound("There is no such reservation here.")
        self.reservation = found
        return found

    def back_url(self) -> str | None:
        return reverse("staff:lending:reservation", kwargs={"reservation_id": self.kwargs["reservation_id"]})

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        item = self.reservation
        if item is None:  # loaded by get() and post() first
            raise NotFound("Not found.")
        return (
            super().page_context(values, errors)
            | self.admin_context(f"Change reservation {item.pk}")
            | {
                "intro": f"For {item.patron.display_name} at {item.center.name}. Only a pending reservation can change.",
                "action": reverse("staff:lending:reservation-edit", kwargs={"reservation_id": item.pk}),
                "back_url": self.back_url(),
                "back_label": "the reservation",
                "submit": "Save changes",
            }
        )

    def get(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        item = self.load()
        values: dict[str, Any] = {
            "starts_at": self.local(item.starts_at), "ends_at": self.local(item.ends_at), "title": item.title,
            "note": item.note_to_staff, "pickup_option": item.pickup_option, "delivery_location": item.delivery_location,
        }  # fmt: skip
        for index, line in enumerate(item.lines.all()[: specs.LINE_COUNT]):
            values[f"lines.{index}.resource"] = line.resource_id or ""
            values[f"lines.{index}.resource_type"] = line.resource_type_id or ""
            values[f"lines.{index}.quantity"] = line.quantity if line.resource_type_id else ""
        return self.render_form(values, {})

    def post(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        item = self.load()
        self.posted = read_post(request, self.specs())
        try:
            booking.edit_reservation(
                actor=self.actor, reservation=item, starts_at=self.posted["starts_at"], ends_at=self.posted["ends_at"],
                lines=self.lines(self.posted), title=self.posted["title"], note=self.posted["note"],
                pickup_option=self.posted["pickup_option"], delivery_location=self.posted["delivery_location"],
                override_comment=self.posted.get("override_comment", "").strip() or None,
            )  # fmt: skip
        except Refused as exc:
            return self.refused(exc, item.center, self.posted)
        messages.success(request, f"Reservation {item.pk} changed.")
        return HttpResponseRedirect(reverse("staff:lending:reservation", kwargs={"reservation_id": item.pk}))


# --- availability ------------------------------------------------------------------------------------------


class AvailabilityView(LendingView):
    """For a center and a span: free units per type, the free resources of one type, and why not for one."""

    permission = DESK
    tab = "availability"

    def get(self, request: HttpRequest) -> HttpResponse:
        self.enter()
        chosen = {spec.name: request.GET.get(spec.name, "").strip() for spec in specs.AVAILABILITY}
        errors: dict[str, list[str]] = {}
        centers = self.centers()
        result: dict[str, Any] = {}
        if any(chosen.values()):
            result = self.answer(chosen, errors)
        choices: dict[str, fields.Choices] = {
            "center": center_choices(centers, empty="—"),
            "resource_type": type_choices(self.library_id, empty="(every type)"),
            "resource": resource_choices(self.library_id, empty="(none)"),
        }
        bound = fields.bind(specs.AVAILABILITY, chosen, errors, choices=choices)
        context = (
            self.admin_context("Availability")
            | {
                "filters": bound,
                "errors": fields.error_summary(errors, bound),
                "zone": self.zone().key,
                "chosen": chosen,
            }
            | result
        )
        return render(request, "staff/lending/availability.html", context, status=400 if errors else 200)

    def answer(self, chosen: Mapping[str, str], errors: dict[str, list[str]]) -> dict[str, Any]:
        zone = self.zone()
        place = None
        if chosen["center"].isdigit():
            place = next((c for c in self.centers() if c.pk == int(chosen["center"])), None)
        if place is None:
            errors["center"] = ["Choose a checkout center."]
        span: list[dt.datetime] = []
        for name in ("starts_at", "ends_at"):
            instant = _instant(chosen[name], zone)
            if instant is None:
                errors[name] = ["Give a date and time such as 2027-05-04 10:00."]
            else:
                span.append(instant)
        if len(span) == 2:
            try:
                booking.check_span(*span)
            except FieldError as exc:
                errors.update(exc.errors)
        if errors or place is None:
            return {}
        starts, ends = span
        result: dict[str, Any] = {"searched": True, "center": place}
        types = {t.pk: t for t in ResourceType.objects.filter(library_id=self.library_id, centers=place)}
        if chosen["resource_type"].isdigit() and int(chosen["resource_type"]) in types:
            kind = types[int(chosen["resource_type"])]
            free = availability.type_availability(place, kind, starts, ends)
            result["one_type"] = {"type": kind, "free_units": free.free_units, "resources": free.free_resources}
        elif chosen["resource_type"]:
            errors["resource_type"] = [f"{place.name} does not lend this type."]
        else:
            counts = availability.free_counts_by_type(place, starts, ends)
            result["counts"] = sorted(
                ({"type": types[pk], "free_units": n} for pk, n in counts.items() if pk in types),
                key=lambda row: row["type"].name,
            )
        if chosen["resource"]:
            item = (
                Resource.objects.filter(
                    library_id=self.library_id, pk=int(chosen["resource"]) if chosen["resource"].isdigit() else -1
                )
                .select_related("resource_type", "center", "center__library")
                .first()
            )
            if item is None:
                errors["resource"] = ["Choose a resource from the list."]
            elif item.center_id != place.pk:
                errors["resource"] = [f"{item} is lent from {item.center.name}, not {place.name}."]
            else:
                result["why"] = {"resource": item, "reasons": availability.why_not(item, starts, ends)}
        return result
