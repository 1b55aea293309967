"""The desk pages: a checkout center's day, checking a reservation out, walk-up checkout, a checkout with its
check-in, and copying a checkout into a new reservation. Every rule is in ``circulation.services``; these
pages load objects of the current library, pass what was typed or scanned and show the answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from patronage.circulation import queries as desk_queries
from patronage.circulation import services as desk
from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.core.errors import FieldError, NotFound, Refused
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.patrons.access import PatronNotFound, patron_by_barcode_for_staff
from patronage.reservations.models import Reservation

from ... import fields
from ...admin.views.base import read_post
from ...once import OnceOnly
from .base import DESK, LendingForm, LendingView, refusal_of

OVERRIDE = Permission.OVERRIDE_RESERVATION_RULES

SCANNED = fields.FieldSpec(
    "scanned",
    "Scanned resources",
    kind="textarea",
    help="One identifier a line, e.g. LAP-0042. To hand out another resource of the same type instead of a "
    "reserved one, scan that one.",
)
OVERRIDE_COMMENT = fields.FieldSpec(
    "override_comment",
    "Override comment",
    kind="textarea",
    help="Only to hand out despite the patron's standing (blocks, fines, late resources); say why. Kept with the "
    "reservation.",
)
WALK_UP = (
    fields.FieldSpec("patron", "Patron barcode", required=True, help="Scan or type the patron's card."),
    fields.FieldSpec("ends_at", "Return by", kind="datetime-local", required=True, help="In the center's local time."),
    fields.FieldSpec(
        "scanned", "Scanned resources", kind="textarea", required=True, help="One identifier a line, e.g. LAP-0042."
    ),
    fields.FieldSpec("title", "Event or class title"),
    fields.FieldSpec("note", "Note to staff", kind="textarea"),
)
CHECK_IN_SCANNED = fields.FieldSpec(
    "scanned",
    "Scanned resources",
    kind="textarea",
    help="One identifier a line; added to those ticked above.",
)
COPY = (
    fields.FieldSpec("starts_at", "Start", kind="datetime-local", required=True, help="Pickup, in local time."),
    fields.FieldSpec("ends_at", "End", kind="datetime-local", required=True, help="Return, in local time."),
)


def scanned_lines(text: str) -> list[str]:
    """A scanner sends one identifier a line; commas or spaces between several typed by hand work too."""
    return [part for part in text.replace(",", "\n").split() if part]


class DeskView(LendingView):
    """A checkout center's day: pickups, returns, late and open checkouts, and the scheduled jobs."""

    permission = DESK
    tab = "reservations"

    def get(self, request: HttpRequest, center_id: int) -> HttpResponse:
        self.enter()
        place = self.center(center_id)
        now = clock.now()
        day = desk_queries.desk_day(place, now=now)
        jobs = desk_queries.job_statuses([self.library_id], now=now)
        context = self.admin_context(f"Desk at {place.name}") | {
            "center": place,
            "day": day,
            "jobs": jobs,
            "stale_jobs": [job for job in jobs if job.stale],
            "stale_minutes": int(jobs[0].stale_after.total_seconds() // 60) if jobs else 0,
            "now": now,
            "zone": self.zone().key,
            "shown_max": desk_queries.DESK_ROWS,
        }
        return render(request, "staff/lending/desk.html", context)


class _CheckoutOfReservation(LendingForm):
    """Check a reserved reservation out: scan what is handed out, optionally override standing."""

    permission = DESK
    tab = "reservations"
    template = "staff/lending/checkout_form.html"
    reservation: Reservation | None = None
    refusal: dict[str, Any] | None = None

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

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return (SCANNED, OVERRIDE_COMMENT) if self.can(OVERRIDE) else (SCANNED,)

    def back_url(self) -> str | None:
        return reverse("staff:lending:reservation", kwargs={"reservation_id": self.kwargs["reservation_id"]})

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        item = self.reservation
        if item is None:  # loaded by get() and post() first
            raise NotFound("Not found.")
        return self.admin_context(f"Check out reservation {item.pk}") | {
            "r": item,
            "lines": item.lines.select_related("resource", "resource_type"),
            "refusal": self.refusal,
            "zone": self.zone().key,
            "action": reverse("staff:lending:reservation-checkout", kwargs={"reservation_id": item.pk}),
            "back_url": self.back_url(),
        }


class CheckOutView(OnceOnly, _CheckoutOfReservation):
    def get(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        self.load()
        return self.render_form({}, {})

    def post(self, request: HttpRequest, reservation_id: int) -> HttpResponse:
        item = self.load()
        self.posted = read_post(request, self.specs())
        try:
            made = desk.check_out(
                actor=self.actor, reservation=item, scanned=scanned_lines(self.posted["scanned"]),
                override_comment=self.posted.get("override_comment", "").strip() or None,
            )  # fmt: skip
        except Refused as exc:
            self.refusal = refusal_of(exc)
            return self.render_form(self.posted, {}, status=409)
        messages.success(request, f"Checked out: {made.items.count()} resource(s), due {self._due(made)}.")
        return self.done_once(reverse("staff:lending:checkout", kwargs={"checkout_id": made.pk}))

    def _due(self, made: Checkout) -> str:
        return made.due_at.astimezone(self.zone()).strftime("%Y-%m-%d %H:%M")


class WalkUpView(OnceOnly, LendingForm):
    """Hand resources to a patron at the desk without a reservation."""

    permission = DESK
    tab = "reservations"
    template = "staff/lending/desk_walk_up.html"
    place: Branch | None = None
    refusal: dict[str, Any] | None = None

    def load(self) -> Branch:
        self.enter()
        self.place = self.center(self.kwargs["center_id"])
        return self.place

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return (*WALK_UP, OVERRIDE_COMMENT) if self.can(OVERRIDE) else WALK_UP

    def back_url(self) -> str | None:
        return reverse("staff:lending:desk", kwargs={"center_id": self.kwargs["center_id"]})

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        place = self.place
        if place is None:
            raise NotFound("Not found.")
        return self.admin_context(f"Walk-up checkout at {place.name}") | {
            "center": place,
            "refusal": self.refusal,
            "zone": self.zone().key,
            "action": reverse("staff:lending:walk-up", kwargs={"center_id": place.pk}),
            "back_url": self.back_url(),
        }

    def get(self, request: HttpRequest, center_id: int) -> HttpResponse:
        self.load()
        return self.render_form({"patron": request.GET.get("patron", "")}, {})

    def post(self, request: HttpRequest, center_id: int) -> HttpResponse:
        place = self.load()
        self.posted = read_post(request, self.specs())
        number = self.posted["patron"].strip()
        if not number:
            raise FieldError("patron", "Scan or type the patron's barcode.")
        try:
            patron = patron_by_barcode_for_staff(self.actor, self.library_id, number, DESK)
        except PatronNotFound:
            raise FieldError("patron", f"No patron here has the barcode {number[:40]!r}.") from None
        try:
            made = desk.walk_up(
                actor=self.actor, patron=patron, center=place, ends_at=self.posted["ends_at"],
                scanned=scanned_lines(self.posted["scanned"]), title=self.posted["title"], note=self.posted["note"],
                override_comment=self.posted.get("override_comment", "").strip() or None,
            )  # fmt: skip
        except Refused as exc:
            self.refusal = refusal_of(exc)
            return self.render_form(self.posted, {}, status=409)
        messages.success(request, f"Checked out to {patron.display_name}.")
        return self.done_once(reverse("staff:lending:checkout", kwargs={"checkout_id": made.pk}))


# --- a checkout: its items, check-in and copy ----------------------------------------------------------------


class _CheckoutPage(LendingForm):
    permission = DESK
    tab = "reservations"
    checkout: Checkout | None = None

    def load(self) -> Checkout:
        self.enter()
        found = (
            Checkout.objects.filter(library_id=self.library_id, pk=self.kwargs["checkout_id"])
            .select_related("patron", "center", "reservation")
            .first()
        )
        if found is None:
            raise NotFound("There is no such checkout here.")
        self.checkout = found
        return found

    def loaded(self) -> Checkout:
        if self.checkout is None:  # loaded by get() and post() first
            raise NotFound("Not found.")
        return self.checkout

    def back_url(self) -> str | None:
        return reverse("staff:lending:checkout", kwargs={"checkout_id": self.kwargs["checkout_id"]})


class CheckoutView(_CheckoutPage):
    """A checkout: what was handed out and what is back, lateness and any overdue invoice; check in."""

    template = "staff/lending/checkout.html"

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return (CHECK_IN_SCANNED,)

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        found = self.loaded()
        now = clock.now()
        items = []
        for item in found.items.select_related("resource", "returned_by").order_by("id"):
            items.append(
                {
                    "item": item,
                    "ticked": str(item.pk) in values.get("returned", []),
                    "note": values.get(f"note.{item.pk}", ""),
                }
            )
        invoice = desk_queries.overdue_fee(found)
        return self.admin_context(f"Checkout {found.pk}") | {
            "c": found,
            "items": items,
            "out": [row for row in items if row["item"].returned_at is None],
            "is_late": found.completed_at is None and found.due_at < now,
            "returned_late": found.completed_at is not None and found.completed_at > found.due_at,
            "invoice": {"fee": invoice[0], "outstanding": invoice[1]} if invoice else None,
            "zone": self.zone().key,
            "may_copy": found.completed_at is not None and found.patron_id is not None,
        }

    def get(self, request: HttpRequest, checkout_id: int) -> HttpResponse:
        self.load()
        return self.render_form({}, {})


class CheckInView(OnceOnly, CheckoutView):
    """Posted from the checkout's page: everything still out, or the ticked and scanned ones. Bad input
    shows the checkout's page again with what was ticked and typed."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, checkout_id: int) -> HttpResponse:
        found = self.load()
        posted: dict[str, Any] = dict(read_post(request, self.specs()))
        posted["returned"] = request.POST.getlist("returned")
        out = {str(i.pk): i for i in found.items.select_related("resource") if i.returned_at is None}
        notes: dict[str, str] = {}
        for key, item in out.items():
            posted[f"note.{key}"] = request.POST.get(f"note.{key}", "")
            if posted[f"note.{key}"].strip():
                notes[item.resource.identifier] = posted[f"note.{key}"]
        self.posted = posted
        everything = request.POST.get("everything") == "1"
        wanted: list[str] | None = None
        if not everything:
            ticked = [out[k].resource.identifier for k in posted["returned"] if k in out]
            wanted = list(dict.fromkeys([*ticked, *scanned_lines(posted["scanned"])]))
            if not wanted:
                raise FieldError("scanned", "Tick or scan what came back, or check in everything.")
        desk.check_in(actor=self.actor, checkout=found, scanned=wanted, condition_notes=notes)
        found.refresh_from_db()
        if found.completed_at is not None:
            messages.success(request, "Everything is back; the checkout is completed.")
        else:
            messages.success(request, f"Checked in: {', '.join(wanted or [])}.")
        return self.done_once(self.back_url() or "")


class CopyView(OnceOnly, _CheckoutPage):
    """Book a completed checkout's resources again for a new span, prefilled one week later."""

    template = "staff/lending/checkout_copy.html"
    refusal: dict[str, Any] | None = None

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return (*COPY, OVERRIDE_COMMENT) if self.can(OVERRIDE) else COPY

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        found = self.loaded()
        return self.admin_context(f"Copy checkout {found.pk}") | {
            "c": found,
            "resources": [i.resource for i in found.items.select_related("resource").order_by("id")],
            "refusal": self.refusal,
            "zone": self.zone().key,
            "action": reverse("staff:lending:checkout-copy", kwargs={"checkout_id": found.pk}),
            "back_url": self.back_url(),
        }

    def get(self, request: HttpRequest, checkout_id: int) -> HttpResponse:
        found = self.load()
        source = found.reservation
        week = dt.timedelta(days=7)
        values = {"starts_at": self.local(source.starts_at + week), "ends_at": self.local(source.ends_at + week)}
        return self.render_form(values, {})

    def post(self, request: HttpRequest, checkout_id: int) -> HttpResponse:
        found = self.load()
        self.posted = read_post(request, self.specs())
        try:
            made = desk.copy_checkout(
                actor=self.actor, checkout=found, starts_at=self.posted["starts_at"], ends_at=self.posted["ends_at"],
                override_comment=self.posted.get("override_comment", "").strip() or None,
            )  # fmt: skip
        except Refused as exc:
            self.refusal = refusal_of(exc)
            return self.render_form(self.posted, {}, status=409)
        messages.success(request, f"Reservation {made.pk} made from checkout {found.pk}.")
        return self.done_once(reverse("staff:lending:reservation", kwargs={"reservation_id": made.pk}))
