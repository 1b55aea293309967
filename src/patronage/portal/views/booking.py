"""The portal's New Reservation flow: when and what, add resources, review and submit.

Server-rendered in three pages and working without JavaScript. The draft (times, title, repeats, pickup
and the cart) lives in the patron's session until it is submitted. Every rule is the domain's: the
catalog a patron may browse is ``resources.queries.portal_catalog``; availability is
``reservations.queries``; the times, repeats and lines are checked by ``reservations.services`` and the
reservation is made by ``create_reservation`` / ``create_series`` as the patron, through the portal.

A submit carries a one-time token kept in the session: a reload or a second click finds the token
spent and shows the reservation already made instead of booking again.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe

from patronage.core import audit, clock
from patronage.core.errors import FieldError, NotFound, Refused, ValidationFailed
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.reservations import queries as availability
from patronage.reservations import services as booking
from patronage.reservations.models import Reservation
from patronage.reservations.rules import WEEKDAYS, Code, State
from patronage.resources import queries as catalog
from patronage.resources.models import Resource, ResourceType

from . import PortalView, client_ip, error_summary

DRAFT = "portal_booking_draft"
TOKEN = "portal_booking_token"  # noqa: S105 - a session key name
DONE = "portal_booking_done"
TOKEN_SPENT_SECONDS = 24 * 3600
DONE_KEPT = 10

WEEKDAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)
REPEATS = (
    ("none", "Does not repeat"),
    ("daily", "Daily"),
    ("weekly", "Weekly, on the days chosen"),
    ("monthly_date", "Monthly, on a date"),
    ("monthly_weekday", 'Monthly, on a weekday (e.g. "the 2nd Tuesday")'),
)
WEEK_OF_MONTH = (("1", "1st"), ("2", "2nd"), ("3", "3rd"), ("4", "4th"), ("5", "5th"), ("last", "last"))


def _choices(element: str, pairs: Iterable[tuple[str, str]], mark: str) -> tuple[tuple[str, str, str], ...]:
    """Each (value, text) as ``element`` (its fields: value, the mark or nothing, text), escaped once: (value,
    the element unmarked, the element marked)."""
    return tuple(
        (v, format_html(element, v=v, mark="", text=t), format_html(element, v=v, mark=mark, text=t)) for v, t in pairs
    )


_OPTION = '<option value="{v}"{mark}>{text}</option>'
# The repeat fields' choices, as the details form shows them (``repeat_choices`` marks the one given).
CHOICES = {
    "repeat": _choices(_OPTION, REPEATS, " selected"),
    "repeat_month_day": _choices(_OPTION, ((str(n), str(n)) for n in range(1, 32)), " selected"),
    "repeat_week_of_month": _choices(_OPTION, WEEK_OF_MONTH, " selected"),
    "repeat_weekday": _choices(_OPTION, WEEKDAY_NAMES.items(), " selected"),
    "repeat_weekdays": _choices(
        '<div class="choice"><input type="checkbox" id="f-repeat_weekdays-{v}" name="repeat_weekdays" value="{v}"{mark}>'
        '<label for="f-repeat_weekdays-{v}">{text}</label></div>',
        WEEKDAY_NAMES.items(),
        " checked",
    ),
}
DETAIL_NAMES = (
    "starts_on", "starts_time", "ends_on", "ends_time", "title", "note", "pickup_option", "delivery_location",
    "repeat", "repeat_interval", "repeat_month_day", "repeat_week_of_month", "repeat_weekday", "repeat_end",
    "repeat_until", "repeat_count",
)  # fmt: skip
LIMITS = {"title": booking.TITLE_MAX, "note": booking.NOTE_MAX, "delivery_location": booking.LOCATION_MAX}

# The domain's field names, and the reason codes about one field, mapped to this form's fields.
FIELD_OF = {
    "starts_at": "starts_on",
    "ends_at": "ends_on",
    "repeat.frequency": "repeat",
    "repeat.interval": "repeat_interval",
    "repeat.weekdays": "repeat_weekdays",
    "repeat.month_day": "repeat_month_day",
    "repeat.week_of_month": "repeat_week_of_month",
    "repeat.until": "repeat_until",
    "repeat.count": "repeat_count",
}
REASON_FIELD = {
    Code.TITLE_REQUIRED: "title",
    Code.END_NOT_AFTER_START: "ends_on",
    Code.DURATION_OVER_LIMIT: "ends_on",
    Code.STARTS_IN_PAST: "starts_on",
    Code.INSIDE_LEAD_TIME: "starts_on",
    Code.OUTSIDE_OPEN_HOURS: "starts_on",
    Code.PICKUP_OPTION_NOT_OFFERED: "pickup_option",
    Code.DELIVERY_LOCATION_UNKNOWN: "delivery_location",
}
TAKEN = {Code.RESOURCE_BOOKED, Code.RESOURCE_BUFFER, Code.RESOURCE_OUT_OF_SERVICE}


def patron_actor(request: HttpRequest, patron: Patron) -> audit.Actor:
    """The patron acting for themselves: recorded by id ("patron 42"), never by name, in the audit log and as
    the reservation's operator, so deleting or anonymising the patron leaves no name behind."""
    return audit.Actor.patron(patron.pk, client_ip(request))


def _digits(value: object) -> int | None:
    text = str(value or "").strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


class BookingView(PortalView):
    """What every page of the flow needs: the center, the draft in the session, the span and catalog."""

    place: Branch

    def setup_center(self) -> HttpResponse | None:
        center = self.center()
        if center is None:
            if self.centers():
                return HttpResponseRedirect(self.url("portal:center"))
            return self.page(
                "portal/error.html",
                {"title": "No checkout center", "message": f"{self.library.name} has no checkout center open to the portal."},
                404,
            )  # fmt: skip
        center.library = self.library  # the same row, read once: the availability checks ask for it
        self.place = center
        return None

    # --- the draft -----------------------------------------------------------------------------------

    def draft(self) -> dict[str, Any]:
        if not hasattr(self, "_draft"):
            patron = self.signed_in().patron
            stored = self.request.session.get(DRAFT)
            owner = {"library": self.library.pk, "center": self.place.pk, "patron": patron.pk}
            if not isinstance(stored, dict) or any(stored.get(k) != v for k, v in owner.items()):
                stored = {**owner, "details": {"pickup_option": Reservation.PickupOption.DESK}, "cart": []}
            self._draft: dict[str, Any] = stored
        return self._draft

    def save_draft(self) -> None:
        self.request.session[DRAFT] = self.draft()

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = self.draft()["details"]
        return details

    def cart(self) -> list[dict[str, Any]]:
        cart: list[dict[str, Any]] = self.draft()["cart"]
        return cart

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.library.time_zone)

    def local(self, name: str) -> str:
        """A start or end as the center's wall clock, "YYYY-MM-DDTHH:MM", or "" when not given."""
        day, time = self.details().get(f"{name}_on", ""), self.details().get(f"{name}_time", "")
        return f"{day}T{time}" if day and time else ""

    def span(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The saved start and end as instants, when both are given and the end follows the start."""
        if not self.details().get("saved"):
            return None
        try:
            start = booking.parse_instant(self.local("starts"), "starts_at", self.library.time_zone)
            end = booking.parse_instant(self.local("ends"), "ends_at", self.library.time_zone)
            booking.check_span(start, end)
        except FieldError:
            return None
        return start, end

    def catalog(self) -> catalog.PortalCatalog:
        if not hasattr(self, "_catalog"):
            span = self.span()
            on = (span[0] if span else clock.now()).astimezone(self.zone()).date()
            self._catalog = catalog.portal_catalog(self.library.pk, self.place.pk, self.signed_in().patron.pk, on)
        return self._catalog

    def policy(self) -> Any:
        """The center's policy, read once per request."""
        if not hasattr(self, "_policy"):
            self._policy = availability.policy_for(self.place)
        return self._policy

    # --- reading the cart ----------------------------------------------------------------------------

    def cart_rows(self) -> list[dict[str, Any]]:
        """The cart with names, each line as the domain's ``clean_lines`` takes it."""
        ids = [line["resource"] for line in self.cart() if "resource" in line]
        resources = (
            Resource.objects.filter(library=self.library).select_related("resource_type").in_bulk(ids) if ids else {}
        )
        type_ids = [line["resource_type"] for line in self.cart() if "resource_type" in line]
        types = ResourceType.objects.filter(library=self.library).in_bulk(type_ids) if type_ids else {}
        rows = []
        for line in self.cart():
            if "resource" in line:
                found = resources.get(line["resource"])
                name = found.name if found else "A resource no longer lent"
                kind = found.resource_type.name if found else ""
                rows.append({"key": line["key"], "resource": found, "name": name, "type_name": kind, "quantity": 1})
            else:
                kind_row = types.get(line["resource_type"])
                rows.append(
                    {
                        "key": line["key"], "resource_type": kind_row, "quantity": line["quantity"],
                        "name": kind_row.name if kind_row else "A type no longer lent",
                        "type_name": kind_row.name if kind_row else "",
                    }
                )  # fmt: skip
        return rows

    def lines(self) -> list[dict[str, Any]]:
        return [
            {"resource": line["resource"]}
            if "resource" in line
            else {"resource_type": line["resource_type"], "quantity": line["quantity"]}
            for line in self.cart()
        ]

    def repeat(self) -> dict[str, Any] | None:
        """The repeat rule as ``clean_repeat`` takes it; None when the reservation does not repeat."""
        d = self.details()
        kind = d.get("repeat") or "none"
        if kind == "none":
            return None
        rule: dict[str, Any] = {
            "frequency": {"monthly_date": "monthly", "monthly_weekday": "monthly"}.get(kind, kind),
            "interval": d.get("repeat_interval") or "1",
        }
        if kind == "weekly":
            rule["weekdays"] = list(d.get("repeat_weekdays") or [])
        elif kind == "monthly_date":
            rule["month_day"] = d.get("repeat_month_day") or ""
        elif kind == "monthly_weekday":
            rule["week_of_month"] = d.get("repeat_week_of_month") or ""
            rule["weekdays"] = [d["repeat_weekday"]] if d.get("repeat_weekday") else []
        if d.get("repeat_end") == "count":
            rule["count"] = d.get("repeat_count") or ""
        else:
            rule["until"] = d.get("repeat_until") or ""
        return rule

    def repeat_text(self) -> str:
        d = self.details()
        kind = d.get("repeat") or "none"
        if kind == "none":
            return "Does not repeat"
        every = d.get("repeat_interval") or "1"
        unit = {"daily": "day", "weekly": "week"}.get(kind, "month")
        text = f"Every {unit}" if every == "1" else f"Every {every} {unit}s"
        if kind == "weekly" and d.get("repeat_weekdays"):
            text += " on " + ", ".join(WEEKDAY_NAMES.get(w, w) for w in d["repeat_weekdays"])
        if kind == "monthly_date":
            day = d.get("repeat_month_day", "")
            text += " on the last day" if day == "last" else f" on day {day}"
        if kind == "monthly_weekday":
            nth = dict(WEEK_OF_MONTH).get(d.get("repeat_week_of_month", ""), "")
            text += f" on the {nth} {WEEKDAY_NAMES.get(d.get('repeat_weekday', ''), '')}"
        if d.get("repeat_end") == "count":
            return f"{text}, {d.get('repeat_count')} times"
        return f"{text}, until {d.get('repeat_until')}"

    # --- pages -----------------------------------------------------------------------------------------

    def new_url(self, **query: Any) -> str:
        base = self.url("portal:reservation-new")
        kept = {k: v for k, v in query.items() if v not in (None, "")}
        return f"{base}?{urlencode(kept)}" if kept else base

    def link_of(self, field_name: str) -> str:
        return f"{self.url('portal:reservation-new')}#f-{field_name}"


# --- the New Reservation page: when and what, add resources, the cart ---------------------------------------


class NewReservationView(BookingView):
    """``/portal/<lib>/reservations/new/``: the details form, the catalog to browse and search, the cart."""

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        return self.setup_center() or self.render_new({})

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        refused = self.setup_center()
        if refused is not None:
            return refused
        action = request.POST.get("action", "")
        back = {k: request.POST.get(k, "") for k in ("q", "type", "items", "resource")}
        if action == "details":
            return self.save_details()
        if action == "add_type":
            return self.add_type(back)
        if action == "add_resource":
            return self.add_resource(back)
        if action == "quantity":
            return self.change_quantity(back)
        if action == "remove":
            key = request.POST.get("key", "")
            self.draft()["cart"] = [line for line in self.cart() if line["key"] != key]
            self.save_draft()
            messages.success(request, "Removed from your cart.")
            return HttpResponseRedirect(self.new_url(**back) + "#cart")
        if action == "replace":
            return self.replace(back)
        return self.render_new({"action": ["Choose what to do with the buttons on the page."]}, status=400)

    # --- details ---

    def save_details(self) -> HttpResponse:
        post = self.request.POST
        given: dict[str, Any] = {name: post.get(name, "").strip() for name in DETAIL_NAMES}
        given["repeat_weekdays"] = [d for d in post.getlist("repeat_weekdays") if d in WEEKDAYS]
        errors: dict[str, list[str]] = {}
        for name, limit in LIMITS.items():
            given[name] = given[name][: limit + 1]
        self.draft()["details"] = {**given, "saved": False}
        for which in ("starts", "ends"):
            day, time = given[f"{which}_on"], given[f"{which}_time"]
            label = "start" if which == "starts" else "end"
            try:
                dt.date.fromisoformat(day)
            except ValueError:
                errors[f"{which}_on"] = [f"Enter the {label} date, such as 2027-03-01."]
            try:
                dt.time.fromisoformat(time)
            except ValueError:
                errors[f"{which}_time"] = [f"Enter the {label} time, such as 09:00."]
        instants: dict[str, dt.datetime] = {}
        if not errors:
            for which, domain_name in (("starts", "starts_at"), ("ends", "ends_at")):
                try:
                    instants[which] = booking.parse_instant(self.local(which), domain_name, self.library.time_zone)
                except FieldError as exc:
                    self.add_errors(errors, exc.errors)
        if len(instants) == 2:
            try:
                booking.check_span(instants["starts"], instants["ends"])
            except FieldError as exc:
                self.add_errors(errors, exc.errors)
        for name, limit in LIMITS.items():
            if len(given[name]) > limit:
                errors[name] = [f"Use at most {limit} characters."]
        rule = self.repeat()
        if rule is not None:
            try:
                booking.clean_repeat(rule)
            except (ValidationFailed, FieldError) as exc:
                self.add_errors(errors, exc.errors)
        if errors:
            self.save_draft()
            return self.render_new(errors, status=400)
        self.details()["saved"] = True
        self.save_draft()
        messages.success(self.request, "Saved. Now add resources to your cart.")
        return HttpResponseRedirect(self.new_url() + "#add-resources")

    def add_errors(self, errors: dict[str, list[str]], found: Mapping[str, Sequence[str]]) -> None:
        weekday_field = "repeat_weekday" if self.details().get("repeat") == "monthly_weekday" else "repeat_weekdays"
        for name, texts in found.items():
            mine = weekday_field if name == "repeat.weekdays" else FIELD_OF.get(name, name)
            errors.setdefault(mine, []).extend(texts)

    # --- the cart ---

    def reservable_type(self, raw: object) -> ResourceType:
        type_id = _digits(raw)
        if type_id is None or type_id not in self.catalog().reservable:
            raise NotFound("No such resource type to reserve here.")
        return self.catalog().types[type_id]

    def reservable_resource(self, raw: object) -> Resource:
        resource_id = _digits(raw)
        found = catalog.portal_resources(self.catalog(), self.place.pk, ids=[resource_id] if resource_id else [])
        if not found:
            raise NotFound("No such resource to reserve here.")
        return found[0]

    def quantity(self, raw: object, key: str) -> int | dict[str, list[str]]:
        """A quantity as typed, checked by the domain's line rules (1 to its maximum)."""
        text = str(raw or "").strip()
        try:
            kind = self.reservable_type(key[1:])
            booking.clean_lines(self.library, [{"resource_type": kind.pk, "quantity": text}])
        except (ValidationFailed, FieldError) as exc:
            return {f"quantity-{key}": [m for texts in exc.errors.values() for m in texts]}
        return int(text)

    def add_type(self, back: Mapping[str, str]) -> HttpResponse:
        kind = self.reservable_type(self.request.POST.get("resource_type"))
        key = f"t{kind.pk}"
        current = next((line for line in self.cart() if line["key"] == key), None)
        wanted = self.quantity(self.request.POST.get("quantity") or "1", key)
        if isinstance(wanted, dict):
            return self.render_new(wanted, status=400)
        if current is not None:
            total = self.quantity(current["quantity"] + wanted, key)
            if isinstance(total, dict):
                return self.render_new(total, status=400)
            current["quantity"] = total
        else:
            self.cart().append({"key": key, "resource_type": kind.pk, "quantity": wanted})
        self.save_draft()
        messages.success(self.request, f"Added {wanted} x {kind.name} (one of this type) to your cart.")
        return HttpResponseRedirect(self.new_url(**back) + "#cart")

    def add_resource(self, back: Mapping[str, str]) -> HttpResponse:
        resource = self.reservable_resource(self.request.POST.get("resource"))
        key = f"r{resource.pk}"
        if any(line["key"] == key for line in self.cart()):
            messages.info(self.request, f"{resource.name} is already in your cart.")
        else:
            self.cart().append({"key": key, "resource": resource.pk})
            self.save_draft()
            messages.success(self.request, f"Added {resource.name} to your cart.")
        return HttpResponseRedirect(self.new_url(**back) + "#cart")

    def change_quantity(self, back: Mapping[str, str]) -> HttpResponse:
        key = self.request.POST.get("key", "")
        line = next((line for line in self.cart() if line["key"] == key and "resource_type" in line), None)
        if line is None:
            raise NotFound("That line is no longer in your cart.")
        wanted = self.quantity(self.request.POST.get("quantity"), key)
        if isinstance(wanted, dict):
            return self.render_new(wanted, status=400)
        line["quantity"] = wanted
        self.save_draft()
        messages.success(self.request, "Quantity changed.")
        return HttpResponseRedirect(self.new_url(**back) + "#cart")

    def replace(self, back: Mapping[str, str]) -> HttpResponse:
        """Take a free alternative instead of a cart line (offered by the refusal panel)."""
        key = self.request.POST.get("key", "")
        index = next((i for i, line in enumerate(self.cart()) if line["key"] == key), None)
        if index is None:
            raise NotFound("That line is no longer in your cart.")
        if self.request.POST.get("resource_type"):
            kind = self.reservable_type(self.request.POST.get("resource_type"))
            new: dict[str, Any] = {"key": f"t{kind.pk}", "resource_type": kind.pk, "quantity": 1}
            name = f"one {kind.name}"
        else:
            resource = self.reservable_resource(self.request.POST.get("resource"))
            new, name = {"key": f"r{resource.pk}", "resource": resource.pk}, resource.name
        cart = self.cart()
        if any(line["key"] == new["key"] for line in cart):
            del cart[index]  # the alternative is in the cart already: drop the line it replaces
        else:
            cart[index] = new
        self.save_draft()
        messages.success(self.request, f"Your cart now has {name} instead.")
        return HttpResponseRedirect(self.url("portal:reservation-review"))

    # --- rendering ---

    def render_new(self, errors: Mapping[str, Sequence[str]], status: int = 200) -> HttpResponse:
        get = self.request.GET
        d = self.details()
        policy = self.policy()
        fields = self.detail_fields(d, errors, policy)
        cart_rows = self.cart_rows()
        for row in cart_rows:
            row["errors"] = list(errors.get(f"quantity-{row['key']}", []))
            row["field_id"] = f"f-quantity-{row['key']}"
        extra = [{"name": f"quantity-{r['key']}", "id": r["field_id"]} for r in cart_rows]
        summary = error_summary(errors, [*fields.values(), *extra])
        span = self.span()
        zone = self.zone()
        browse = self.browse(get, span)
        context = {
            "f": fields,
            "errors": summary,
            "policy": policy,
            "saved": bool(d.get("saved")),
            "span": span,
            "span_text": f"{span[0].astimezone(zone):%a %Y-%m-%d %H:%M} to {span[1].astimezone(zone):%a %Y-%m-%d %H:%M}"
            if span
            else "",
            "cart_rows": cart_rows,
            "max_quantity": booking.MAX_QUANTITY,
            "options": self.repeat_choices(fields),
            "time_zone": self.library.time_zone,
            "back": [(k, get.get(k, "")) for k in ("q", "type", "items", "resource")],
            # For the Add form repeated on every listed resource: its action and the non-empty "back" values
            # as hidden inputs, made once per page instead of once per row.
            "new_action": self.url("portal:reservation-new"),
            "back_hidden": format_html_join(
                "",
                '<input type="hidden" name="{}" value="{}">',
                [(k, get.get(k, "")) for k in ("q", "type", "items", "resource") if get.get(k, "")],
            ),
            **browse,
        }
        return self.page("portal/booking.html", context, status)

    def detail_fields(self, d: Mapping[str, Any], errors: Mapping[str, Sequence[str]], policy: Any) -> dict[str, Any]:
        kinds = {
            "starts_on": "date", "ends_on": "date", "repeat_until": "date", "starts_time": "time",
            "ends_time": "time", "repeat_interval": "number", "repeat_count": "number",
        }  # fmt: skip

        def one(name: str, label: str, hint: str = "", required: bool = False) -> dict[str, Any]:
            value = d.get(name, "")
            return {
                "name": name, "id": f"f-{name}", "label": label, "hint": hint, "required": required,
                "value": value if isinstance(value, str) else "", "errors": list(errors.get(name, [])),
                "kind": kinds.get(name, "text"), "autocomplete": "off",
            }  # fmt: skip

        zone = self.library.time_zone
        fields = {
            "starts_on": one("starts_on", "Start date", f"Times are {zone} time.", True),
            "starts_time": one("starts_time", "Start time", "", True),
            "ends_on": one("ends_on", "End date", "", True),
            "ends_time": one("ends_time", "End time", "", True),
            "title": one(
                "title",
                "Event or class title" + ("" if policy.title_required else " (optional)"),
                "This center needs the title of the event or class." if policy.title_required else "",
                policy.title_required,
            ),
            "note": one("note", "Note to the checkout center staff (optional)"),
            "pickup_option": one("pickup_option", "How you receive the resources"),
            "delivery_location": one("delivery_location", "Delivery location"),
            "repeat": one("repeat", "Repeats"),
            "repeat_interval": one("repeat_interval", "Every how many days, weeks or months", "1 means every one."),
            "repeat_weekdays": one("repeat_weekdays", "On these days (weekly)"),
            "repeat_month_day": one("repeat_month_day", "On day of the month"),
            "repeat_week_of_month": one("repeat_week_of_month", "Which one in the month"),
            "repeat_weekday": one("repeat_weekday", "Weekday"),
            "repeat_end": one("repeat_end", "Ends"),
            "repeat_until": one("repeat_until", "Last date"),
            "repeat_count": one("repeat_count", "Number of times"),
            "action": one("action", ""),
        }
        fields["repeat_weekdays"]["chosen"] = list(d.get("repeat_weekdays") or [])
        fields["repeat_weekdays"]["id"] = "f-repeat_weekdays-mon"
        fields["pickup_option"]["id"] = "f-pickup_option-" + ("desk" if policy.desk_pickup else "delivery")
        fields["repeat_end"]["value"] = d.get("repeat_end") or "until"
        fields["repeat"]["value"] = d.get("repeat") or "none"
        return fields

    @staticmethod
    def repeat_choices(fields: Mapping[str, Mapping[str, Any]]) -> dict[str, SafeString]:
        """The choices of the repeat fields with the one given marked, from elements escaped once per process
        (``CHOICES``): a template loop writing them, on every page of the flow, cost more than the rest of
        the form."""
        chosen_days = fields["repeat_weekdays"]["chosen"]
        found = {
            name: mark_safe("".join(on if value == fields[name]["value"] else off for value, off, on in table))  # noqa: S308 - escaped in CHOICES
            for name, table in CHOICES.items()
            if name != "repeat_weekdays"
        }
        found["repeat_weekdays"] = mark_safe(  # noqa: S308 - escaped in CHOICES
            "".join(on if value in chosen_days else off for value, off, on in CHOICES["repeat_weekdays"])
        )
        return found

    def browse(self, get: Mapping[str, str], span: tuple[dt.datetime, dt.datetime] | None) -> dict[str, Any]:
        """The Add Resources part: a search, a type, a type's items with availability, or a resource."""
        shown = self.catalog()
        keyword = get.get("q", "").strip()[:100]
        if get.get("resource"):
            resource = self.reservable_resource(get.get("resource"))
            parts = catalog.with_parts([resource])[resource.pk]
            reasons = (
                availability.why_not(resource, *span, patron=self.signed_in().patron, portal=True) if span else None
            )
            return {"mode": "resource", "resource": resource, "parts": parts, "reasons": reasons,
                    "path": shown.path(resource.resource_type_id)}  # fmt: skip
        if get.get("type"):
            kind = self.known_type(get.get("type"))
            context: dict[str, Any] = {
                "mode": "type", "kind": kind, "path": shown.path(kind.pk), "subtypes": shown.children(kind.pk),
                "reservable": kind.pk in shown.reservable, "items": get.get("items") == "1",
            }  # fmt: skip
            if kind.pk in shown.reservable:
                found = availability.type_availability(self.place, kind, *span) if span else None
                context["free_units"] = found.free_units if found else None
                if context["items"]:
                    free_ids = {r.pk for r in found.free_resources} if found else set()
                    listed = catalog.portal_resources(shown, self.place.pk, type_ids=[kind.pk])
                    for resource in listed:
                        resource.center = self.place  # it is (the query filters on it): not read again per row
                    # Why each busy one is not free, read once for all of them (not once per resource).
                    busy = [r for r in listed if r.pk not in free_ids]
                    patron = self.signed_in().patron
                    # The policy, the type tree and the authorizations this page has read already are not read again.
                    why = (
                        availability.why_not_many(
                            busy, *span, patron=patron, portal=True, policies={self.place.pk: self.policy()},
                            type_trees={self.library.pk: shown.nodes},
                            authorizations={(patron.pk, shown.on): shown.authorized}, read=[found] if found else [],
                        )
                        if span and busy
                        else {}
                    )  # fmt: skip
                    # Only what the list shows of each (no attribute chains for the template to walk per row).
                    context["rows"] = [
                        {
                            "pk": resource.pk,
                            "name": resource.name,
                            "free": resource.pk in free_ids if span else None,
                            "reasons": [reason.message for reason in why.get(resource.pk, [])],
                        }
                        for resource in listed
                    ]
            return context
        if keyword:
            return {
                "mode": "search", "q": keyword, "found_types": catalog.portal_types_named(shown, keyword),
                "found_resources": catalog.portal_resources(shown, self.place.pk, keyword=keyword),
            }  # fmt: skip
        return {"mode": "top", "subtypes": shown.children(None)}

    def known_type(self, raw: object) -> ResourceType:
        type_id = _digits(raw)
        if type_id is None or type_id not in self.catalog().types:
            raise NotFound("No such resource type here.")
        return self.catalog().types[type_id]


# --- Review & Submit ----------------------------------------------------------------------------------------


class ReviewView(BookingView):
    """``/portal/<lib>/reservations/new/review/``: the summary, and the one submit that books."""

    def ready(self) -> HttpResponse | None:
        refused = self.setup_center()
        if refused is not None:
            return refused
        if not self.details().get("saved") or self.span() is None:
            messages.error(self.request, "Set the start and end of your reservation first.")
            return HttpResponseRedirect(self.new_url() + "#when")
        if not self.cart():
            messages.error(self.request, "Your cart is empty: add at least one resource.")
            return HttpResponseRedirect(self.new_url() + "#add-resources")
        return None

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        return self.ready() or self.render_review()

    def new_token(self) -> str:
        token = secrets.token_urlsafe(24)
        self.request.session[TOKEN] = token
        return token

    def render_review(
        self, refusal: dict[str, Any] | None = None, errors: Sequence[Mapping[str, str]] = (), status: int = 200
    ) -> HttpResponse:
        d = self.details()
        span = self.span()
        assert span is not None  # noqa: S101 - ready() checked it
        zone = self.zone()
        policy = self.policy()
        context = {
            "d": d,
            "starts": f"{span[0].astimezone(zone):%a %Y-%m-%d %H:%M}",
            "ends": f"{span[1].astimezone(zone):%a %Y-%m-%d %H:%M}",
            "repeat_text": self.repeat_text(),
            "cart_rows": self.cart_rows(),
            "pickup_text": "At the desk"
            if d.get("pickup_option") != Reservation.PickupOption.DELIVERY
            else f"Delivered to {d.get('delivery_location') or '(no location chosen)'}",
            "approval_required": policy.approval_required,
            "token": self.new_token(),
            "refusal": refusal,
            "errors": list(errors),
            "time_zone": self.library.time_zone,
        }
        return self.page("portal/booking_review.html", context, status)

    def post(self, request: HttpRequest, library: str) -> HttpResponse:
        refused = self.setup_center()
        if refused is not None:
            return refused
        posted = request.POST.get("token", "")
        expected = request.session.pop(TOKEN, None)
        done = request.session.get(DONE) or {}
        if posted and isinstance(done.get(posted), dict) and done[posted].get("patron") == self.signed_in().patron.pk:
            messages.info(request, "This reservation was already sent; it was booked once.")
            return HttpResponseRedirect(self.url("portal:reservation-done") + "?" + urlencode({"t": posted}))
        # The session answers a reload or the back button; the cache also stops two submits racing.
        if not posted or posted != expected or not cache.add(f"portal-booking:{posted}", 1, TOKEN_SPENT_SECONDS):
            request.session.modified = True
            not_ready = self.ready()
            if not_ready is not None:
                return not_ready
            message = "This form was already sent or has expired. Check the details and submit once more."
            return self.render_review(errors=[{"href": "#submit", "message": message}], status=409)
        not_ready = self.ready()
        if not_ready is not None:
            return not_ready
        try:
            made = self.submit()
        except Refused as exc:
            return self.render_review(refusal=self.refusal(exc), status=409)
        except (ValidationFailed, FieldError) as exc:
            return self.render_review(errors=self.field_errors(exc.errors), status=400)
        done = {**done, posted: made}
        request.session[DONE] = dict(list(done.items())[-DONE_KEPT:])
        request.session.pop(DRAFT, None)
        return HttpResponseRedirect(self.url("portal:reservation-done") + "?" + urlencode({"t": posted}))

    def submit(self) -> dict[str, Any]:
        d = self.details()
        patron = self.signed_in().patron
        common = {
            "actor": patron_actor(self.request, patron), "patron": patron, "center": self.place,
            "starts_at": self.local("starts"), "ends_at": self.local("ends"), "lines": self.lines(),
            "title": d.get("title", ""), "note": d.get("note", ""),
            "pickup_option": d.get("pickup_option") or Reservation.PickupOption.DESK,
            "delivery_location": d.get("delivery_location", "")
            if d.get("pickup_option") == Reservation.PickupOption.DELIVERY
            else "",
            "channel": Reservation.Channel.PORTAL,
        }  # fmt: skip
        rule = self.repeat()
        if rule is None:
            made = [booking.create_reservation(**common)]
        else:
            made = booking.create_series(**common, repeat=rule, all_or_nothing=True).booked
        zone = self.zone()
        return {
            "patron": patron.pk,  # a later patron in the same browser never sees this result
            "ids": [r.pk for r in made],
            "pending": any(r.state == State.PENDING_APPROVAL for r in made),
            "starts": [f"{r.starts_at.astimezone(zone):%a %Y-%m-%d %H:%M}" for r in made],
            "title": d.get("title", ""),
        }

    def field_errors(self, found: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
        rows = self.cart_rows()
        summary: list[dict[str, str]] = []
        for name, texts in found.items():
            href = self.link_of(FIELD_OF.get(name, name))
            if name.startswith("lines."):
                index = _digits(name.split(".")[1])
                key = rows[index]["key"] if index is not None and index < len(rows) else ""
                href = f"{self.url('portal:reservation-new')}#f-quantity-{key}" if key else "#cart"
            summary.extend({"href": href, "message": text} for text in texts)
        return summary

    # --- the refusal panel ---

    def refusal(self, exc: Refused) -> dict[str, Any]:
        """Every reason in the patron's words, where one is about a field a link to it, and for taken or
        short resources the free alternatives: other free resources of the type and the free count."""
        span = self.span()
        assert span is not None  # noqa: S101 - ready() checked it
        zone = self.zone()
        rows = self.cart_rows()
        by_resource = {row["resource"].pk: row for row in rows if row.get("resource") is not None}
        by_type = {row["resource_type"].pk: row for row in rows if row.get("resource_type") is not None}
        in_cart = set(by_resource)
        reasons = []
        alternatives: dict[str, dict[str, Any]] = {}
        for raw in exc.reasons:
            code = raw.get("code", "")
            text = raw.get("message", "")
            when = ""
            if raw.get("starts_at"):
                try:
                    when = f"{dt.datetime.fromisoformat(raw['starts_at']).astimezone(zone):%a %Y-%m-%d %H:%M}"
                except ValueError:
                    when = ""
            field_name = REASON_FIELD.get(code)  # type: ignore[call-overload]
            reasons.append(
                {
                    "code": code, "message": text, "remedy": raw.get("remedy", ""), "when": when,
                    "href": self.link_of(field_name) if field_name else "",
                }
            )  # fmt: skip
            resource_id = _digits(raw.get("resource_id"))
            if code in TAKEN and resource_id is not None:
                row = by_resource.get(resource_id) or self.line_of_part(resource_id, rows)
                if row is not None and row["key"] not in alternatives:
                    alternatives[row["key"]] = self.alternatives_for(row, span, in_cart)
            type_id = _digits(raw.get("resource_type_id"))
            if code == Code.TYPE_UNITS_UNAVAILABLE and type_id in by_type:
                row = by_type[type_id]
                free = _digits(raw.get("free"))
                alternatives.setdefault(row["key"], {"row": row, "free_units": free, "resources": [], "type": None})
        standing = [r for r in reasons if r["remedy"]]
        others = [r for r in reasons if not r["remedy"]]
        return {
            "message": exc.message,
            "count": len(reasons),
            "standing": standing,
            "reasons": others,
            "alternatives": list(alternatives.values()),
        }

    def line_of_part(self, resource_id: int, rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        """The cart line of a kit whose part is ``resource_id``."""
        kits = [row["resource"] for row in rows if row.get("resource") is not None]
        for kit, parts in catalog.with_parts(kits).items():
            if any(p.pk == resource_id for p in parts):
                return next(row for row in rows if row.get("resource") is not None and row["resource"].pk == kit)
        return None

    def alternatives_for(
        self, row: Mapping[str, Any], span: tuple[dt.datetime, dt.datetime], in_cart: set[int]
    ) -> dict[str, Any]:
        resource: Resource = row["resource"]
        kind = resource.resource_type
        if kind.pk not in self.catalog().reservable:
            return {"row": row, "free_units": None, "resources": [], "type": None}
        found = availability.type_availability(self.place, kind, *span)
        allowed = {r.pk for r in catalog.portal_resources(self.catalog(), self.place.pk, type_ids=[kind.pk])}
        free = [r for r in found.free_resources if r.pk not in in_cart and r.pk in allowed]
        return {"row": row, "free_units": found.free_units, "resources": free[:10], "type": kind}


# --- the result ----------------------------------------------------------------------------------------------


class DoneView(BookingView):
    """``/portal/<lib>/reservations/new/done/``: what was booked, whether it awaits approval, links to it."""

    def get(self, request: HttpRequest, library: str) -> HttpResponse:
        done = request.session.get(DONE) or {}
        made = done.get(request.GET.get("t", ""))
        if not isinstance(made, dict) or made.get("patron") != self.signed_in().patron.pk:
            return HttpResponseRedirect(self.url("portal:dashboard"))
        links = []
        for pk, starts in zip(made["ids"], made["starts"], strict=False):
            try:
                href = self.url("portal:reservation", reservation_id=pk)
            except NoReverseMatch:
                href = self.url("portal:dashboard")
            links.append({"href": href, "starts": starts})
        return self.page("portal/booking_done.html", {"made": made, "links": links})
