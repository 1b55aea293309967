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
from patronage.core.errors import FieldError, NotFound, Refused, ValidationFailed
from patronage.core.values import flag
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.patrons.access import PatronNotFound, patron_by_barcode_for_staff, patron_for_staff
from patronage.patrons.models import Patron
from patronage.reservations import queries as availability
from patronage.reservations import services as booking
from patronage.reservations.models import Reservation, ReservationSeries
from patronage.reservations.rules import EDITABLE_STATES, State, Step, next_state
from patronage.resources.models import Resource, ResourceType

from ... import fields
from ...admin.views.base import checkbox_group, read_post
from ...once import OnceOnly
from .. import specs
from .base import DESK, LendingForm, LendingView, center_choices, refusal_of, resource_choices, type_choices

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
        "refusal": refusal_of(exc),
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
        self.refusal = refusal_of(exc)
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


class ReservationCreateView(OnceOnly, _ReservationForm):
    """A new reservation; with a repeat it books a series (``create_series``) and shows what it booked."""

    weekdays: list[str]
    series_conflicts: list[dict[str, Any]]

    def base_specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.NEW_RESERVATION

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return (*super().specs(), *specs.REPEAT)

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        return (
            super().page_context(values, errors)
            | self.admin_context("New reservation")
            | {
                "action": reverse("staff:lending:reservation-new"),
                "back_url": reverse("staff:lending:index"),
                "back_label": "reservations",
                "submit": "Reserve",
                "caps": self.caps(values.get("center")),
                "series_conflicts": getattr(self, "series_conflicts", []),
            }
        )

    def caps(self, chosen: object) -> list[dict[str, Any]]:
        """Each center's caps on a series (or the chosen center's), for the hint of the Repeats fieldset."""
        places = self.centers()
        picked = [c for c in places if str(c.pk) == str(chosen or "")]
        return [
            {"center": c, "max": policy.series_max_occurrences, "days": policy.series_horizon_days}
            for c in picked or places
            for policy in [availability.policy_for(c)]
        ]

    def render_form(
        self, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200
    ) -> HttpResponse:
        bound = fields.bind(self.specs(), values, errors, choices=self.choices())
        chosen = set(getattr(self, "weekdays", []))
        days = checkbox_group(
            specs.REPEAT_WEEKDAYS,
            "On these days (weekly)",
            [(v, t, "") for v, t in specs.WEEKDAY_NAMES],
            chosen,
            errors,
        )
        repeats = {f.html_name for f in bound if f.html_name.startswith("repeat.") or f.html_name == "all_or_nothing"}
        context = self.page_context(values, errors) | {
            "fields": [f for f in bound if f.html_name not in repeats and f.html_name != "override_comment"],
            "override_fields": [f for f in bound if f.html_name == "override_comment"],
            "repeat": {f.html_name.removeprefix("repeat."): f for f in bound if f.html_name in repeats},
            "weekdays": days,
            "groups": [],
            "errors": fields.error_summary(errors, [*bound, days["field"]]),
        }
        return render(self.request, self.template, context, status=status)

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
        self.weekdays = request.POST.getlist(specs.REPEAT_WEEKDAYS)
        patron = self.find_patron(self.posted["patron"])
        place = self.center(self.posted["center"]) if self.posted["center"].isdigit() else None
        if place is None:
            raise FieldError("center", "Choose the checkout center.")
        details: dict[str, Any] = {
            "title": self.posted["title"], "note": self.posted["note"], "pickup_option": self.posted["pickup_option"],
            "delivery_location": self.posted["delivery_location"],
        }  # fmt: skip
        override = self.posted.get("override_comment", "").strip() or None
        repeat = repeat_request(self.posted, self.weekdays, self.zone())
        if repeat is not None:
            return self.book_series(patron, place, repeat, details, override)
        try:
            made = booking.create_reservation(
                actor=self.actor, patron=patron, center=place, starts_at=self.posted["starts_at"],
                ends_at=self.posted["ends_at"], lines=self.lines(self.posted), override_comment=override, **details,
            )  # fmt: skip
        except Refused as exc:
            return self.refused(exc, place, self.posted)
        messages.success(request, f"Reservation {made.pk} made for {patron.display_name}.")
        return self.done_once(reverse("staff:lending:reservation", kwargs={"reservation_id": made.pk}))

    def book_series(
        self, patron: Patron, place: Branch, repeat: dict[str, Any], details: dict[str, Any], override: str | None
    ) -> HttpResponse:
        posted = self.posted or {}
        kind = posted.get("repeat.frequency", "")
        lines = self.lines(posted)
        try:
            result = booking.create_series(
                actor=self.actor, patron=patron, center=place, starts_at=posted["starts_at"],
                ends_at=posted["ends_at"], repeat=repeat, lines=lines, override_comment=override,
                all_or_nothing=flag(posted.get("all_or_nothing")), **details,
            )  # fmt: skip
        except (FieldError, ValidationFailed) as exc:
            raise ValidationFailed(_staff_repeat_fields(exc.errors, kind)) from None
        except Refused as exc:
            caps = cap_errors(exc, repeat)
            if caps:
                raise ValidationFailed(caps) from None
            self.series_conflicts = series_refusal(exc, place, self.zone())
            return self.refused(exc, place, posted)
        # The conflicts are not stored by the domain: the series page shows them from the session, once.
        self.request.session[_conflicts_key(result.series.pk)] = {
            "lines": lines,
            "details": details,
            "conflicts": [
                {
                    "index": c.index,
                    "starts_at": c.starts_at.isoformat(),
                    "ends_at": c.ends_at.isoformat(),
                    "reasons": c.reasons,
                    "substitutes": {str(line): r.pk for line, r in c.substitutes.items()},
                }
                for c in result.conflicts
            ],
        }
        booked, missed = len(result.booked), len(result.conflicts)
        text = f"Series {result.series.pk} for {patron.display_name}: {booked} occurrence(s) booked"
        if missed:
            messages.warning(self.request, f"{text}; {missed} conflict(s) not booked, listed below.")
        else:
            messages.success(self.request, f"{text}.")
        return self.done_once(reverse("staff:lending:series", kwargs={"series_id": result.series.pk}))


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
                "intro": f"For {item.patron.display_name if item.patron else 'an anonymised patron'} at "
                f"{item.center.name}. Only a pending reservation can change.",
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


# --- repeats: the Repeats fieldset, the series page, substitutes and "cancel this and later" -----------------

# The center's caps on a series are refusals of the domain (``series_too_long``, ``series_beyond_horizon``);
# the form shows each next to the field that sets it: the first one given of the two named here.
CAP_FIELDS = {
    "series_too_long": ("repeat.count", "repeat.until"),
    "series_beyond_horizon": ("repeat.until", "repeat.count"),
}


def _local_day(text: str, zone: Any) -> dt.datetime | None:
    instant = _instant(text, zone)
    return instant.astimezone(zone) if instant is not None else None


def repeat_request(posted: Mapping[str, str], weekdays: list[str], zone: Any) -> dict[str, Any] | None:
    """The ``repeat`` the service takes, from the Repeats fieldset; None when it does not repeat.

    "Monthly on the date" is the start's day of the month; "monthly on a weekday" without a weekday
    chosen is the start's weekday.
    """
    kind = posted.get("repeat.frequency", "").strip()
    if not kind:
        return None
    repeat: dict[str, Any] = {
        "interval": posted.get("repeat.interval", ""),
        "until": posted.get("repeat.until", ""),
        "count": posted.get("repeat.count", ""),
    }
    start = _local_day(posted.get("starts_at", ""), zone)
    if kind == "monthly_date":
        repeat |= {"frequency": "monthly", "month_day": start.day if start else None}
    elif kind == "monthly_weekday":
        day = posted.get("repeat.month_weekday", "").strip() or (
            specs.WEEKDAY_NAMES[start.weekday()][0] if start else ""
        )
        repeat |= {
            "frequency": "monthly",
            "week_of_month": posted.get("repeat.week_of_month", ""),
            "weekdays": [day] if day else [],
        }
    else:
        repeat |= {"frequency": kind, "weekdays": weekdays if kind == "weekly" else []}
    return repeat


def _staff_repeat_fields(errors: Mapping[str, list[str]], kind: str) -> dict[str, list[str]]:
    """The service's ``repeat.*`` keys as the fields of the Repeats fieldset that set them."""
    # "repeat" alone: the rule gives no date before its end.
    if kind == "monthly_weekday":
        moved = {
            "repeat.month_day": "repeat.week_of_month",
            "repeat.weekdays": "repeat.month_weekday",
            "repeat": "repeat.until",
        }
    else:
        moved = {"repeat.month_day": "repeat.frequency", "repeat": "repeat.until"}
    found: dict[str, list[str]] = {}
    for key, messages_ in errors.items():
        found.setdefault(moved.get(key, key), []).extend(messages_)
    return found


def cap_errors(exc: Refused, repeat: Mapping[str, Any]) -> dict[str, list[str]]:
    """A refusal by the center's caps alone, as field errors; empty when any other reason refused it."""
    codes = [str(r.get("code", "")) for r in exc.reasons]
    if not codes or any(code not in CAP_FIELDS for code in codes):
        return {}
    errors: dict[str, list[str]] = {}
    for reason in exc.reasons:
        first, second = CAP_FIELDS[reason["code"]]
        field = first if str(repeat.get(first.removeprefix("repeat.")) or "").strip() else second
        errors.setdefault(field, []).append(reason["message"])
    return errors


def _when(instant: str | dt.datetime, zone: Any) -> str:
    value = dt.datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    return value.astimezone(zone).strftime("%a %Y-%m-%d %H:%M")


def series_refusal(exc: Refused, place: Branch, zone: Any) -> list[dict[str, Any]]:
    """An all-or-nothing refusal grouped by occurrence: when (local), why, and the substitutes offered."""
    groups: dict[str, dict[str, Any]] = {}
    for reason in exc.reasons:
        if "occurrence" not in reason:
            continue
        group = groups.setdefault(
            reason["occurrence"], {"when": _when(reason["starts_at"], zone), "reasons": [], "substitutes": {}}
        )
        group["reasons"].append(reason)
        group["substitutes"] |= {
            int(key.removeprefix("substitute.")): value
            for key, value in reason.items()
            if key.startswith("substitute.")
        }
    wanted = {int(v) for g in groups.values() for v in g["substitutes"].values() if str(v).isdigit()}
    names = {r.pk: str(r) for r in Resource.objects.filter(pk__in=wanted, library_id=place.library_id)}
    for group in groups.values():
        group["substitutes"] = [
            {"line": line + 1, "resource": names.get(int(pk), pk)} for line, pk in sorted(group["substitutes"].items())
        ]
    return list(groups.values())


def _conflicts_key(series_id: int) -> str:
    return f"lending.series.{series_id}.conflicts"


class _SeriesPage(LendingView):
    permission = DESK
    tab = "reservations"

    def load_series(self, series_id: int) -> ReservationSeries:
        self.enter()
        found = (
            ReservationSeries.objects.filter(library_id=self.library_id, pk=series_id)
            .select_related("center", "patron")
            .first()
        )
        if found is None:
            raise NotFound("There is no such series here.")
        return found

    def series_url(self, series_id: int) -> str:
        return reverse("staff:lending:series", kwargs={"series_id": series_id})


class SeriesDetailView(_SeriesPage):
    """Every occurrence of a series with its state and local times; the conflicts of a series just booked."""

    def get(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = self.load_series(series_id)
        zone, now = self.zone(), clock.now()
        occurrences = [
            {
                "r": r,
                "starts": _when(r.starts_at, zone),
                "ends": _when(r.ends_at, zone),
                "state": State(r.state).label,
                "may_cancel_rest": next_state(r.state, Step.CANCEL) is not None and r.starts_at > now,
            }
            for r in series.occurrences.order_by("starts_at", "pk")
        ]
        stored = request.session.get(_conflicts_key(series.pk)) or {}
        offered = {int(pk) for c in stored.get("conflicts", []) for pk in c["substitutes"].values()}
        names = {r.pk: str(r) for r in Resource.objects.filter(pk__in=offered, library_id=self.library_id)}
        conflicts = [
            {
                "index": c["index"],
                "starts": _when(c["starts_at"], zone),
                "ends": _when(c["ends_at"], zone),
                "reasons": c["reasons"],
                "substitutes": [
                    {"line": int(line) + 1, "resource": names.get(int(pk), str(pk))}
                    for line, pk in sorted(c["substitutes"].items())
                ],
            }
            for c in stored.get("conflicts", [])
        ]
        context = self.admin_context(f"Series {series.pk}") | {
            "series": series,
            "occurrences": occurrences,
            "conflicts": conflicts,
            "zone": zone.key,
        }
        return render(request, "staff/lending/series.html", context)


class SeriesSubstituteView(_SeriesPage):
    """Book one conflicting occurrence of a series just made, with the substitute the service offered."""

    def post(self, request: HttpRequest, series_id: int) -> HttpResponse:
        series = self.load_series(series_id)
        back = HttpResponseRedirect(self.series_url(series.pk))
        key = _conflicts_key(series.pk)
        stored = request.session.get(key) or {}
        chosen = request.POST.get("occurrence", "").strip()
        conflict = next((c for c in stored.get("conflicts", []) if str(c["index"]) == chosen), None)
        if conflict is None or not conflict["substitutes"]:
            messages.error(request, "That occurrence has no substitute waiting to be booked; see the series below.")
            return back
        lines = [dict(line) for line in stored["lines"]]
        for line, resource_id in conflict["substitutes"].items():
            lines[int(line)] = {"resource": str(resource_id)}
        patron = patron_for_staff(self.actor, series.patron_id, DESK, library_id=self.library_id)
        try:
            made = booking.create_reservation(
                actor=self.actor, patron=patron, center=series.center, starts_at=conflict["starts_at"],
                ends_at=conflict["ends_at"], lines=lines, series=series, **stored["details"],
            )  # fmt: skip
        except Refused as exc:
            reasons = "; ".join(str(r.get("message", r.get("code", ""))) for r in exc.reasons)
            messages.error(request, f"{exc.message} {reasons}")
            return back
        stored["conflicts"] = [c for c in stored["conflicts"] if c is not conflict]
        request.session[key] = stored
        messages.success(
            request,
            f"Reservation {made.pk} made for {_when(made.starts_at, self.zone())} with the substitute, "
            "as part of the series.",
        )
        return back


class SeriesCancelView(_ReservationPage):
    """Cancel this occurrence and the later ones of its series, after a confirmation with a comment."""

    errors: Mapping[str, list[str]] | None = None

    def back_url(self) -> str | None:
        item = self.reservation
        if item is not None and item.series_id is not None:
            return reverse("staff:lending:series", kwargs={"series_id": item.series_id})
        return self.detail_url()

    def invalid_handler(self) -> Any:
        return lambda errors: self.page(errors, status=400)

    def page(self, errors: Mapping[str, list[str]], status: int = 200) -> HttpResponse:
        item = self.reservation
        if item is None or item.series_id is None:
            raise NotFound("There is no such series here.")
        zone = self.zone()
        later = Reservation.objects.filter(series_id=item.series_id, starts_at__gte=item.starts_at).order_by(
            "starts_at", "pk"
        )
        affected = [
            {"r": r, "starts": _when(r.starts_at, zone), "state": State(r.state).label}
            for r in later
            if next_state(r.state, Step.CANCEL) is not None
        ]
        bound = fields.bind(specs.CANCEL_SERIES, {"comment": self.request.POST.get("comment", "")}, errors)
        context = self.admin_context(f"Cancel series {item.series_id} from {_when(item.starts_at, zone)}") | {
            "r": item,
            "affected": affected,
            "fields": bound,
            "errors": fields.error_summary(errors, bound),
            "series_url": self.back_url(),
            "zone": zone.key,
        }
        return render(self.request, "staff/lending/series_cancel.html", context, status=status)

    def get(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        item = self.load()
        if item.series_id is None:
            raise NotFound("This reservation is not part of a series.")
        return self.page({})

    def post(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        item = self.load()
        if item.series_id is None:
            raise NotFound("This reservation is not part of a series.")
        cancelled = booking.cancel_series(
            actor=self.actor, from_occurrence=item, comment=request.POST.get("comment", "")
        )
        messages.success(request, f"{len(cancelled)} occurrence(s) of series {item.series_id} cancelled.")
        return HttpResponseRedirect(self.back_url() or self.detail_url())
