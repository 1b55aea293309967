"""The catalog pages: resource types (a tree), resources, service status, center policies, authorizations."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core import clock
from patronage.core.errors import FieldError, NotFound
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.patrons.access import patron_for_staff
from patronage.patrons.models import Patron
from patronage.reservations import services as reservation_services
from patronage.reservations.models import CenterPolicy, Reservation
from patronage.reservations.rules import OPEN_STATES
from patronage.resources import services as catalog
from patronage.resources.commitments import commitments
from patronage.resources.models import Authorization, Resource, ResourceType

from ... import fields
from ...admin.views.base import checkbox_group, read_post
from .. import specs
from .base import (
    LendingForm,
    LendingView,
    center_choices,
    resource_choices,
    tree_rows,
    type_choices,
)

TYPE_FIELDS = tuple(spec.name for spec in specs.RESOURCE_TYPE)
RESOURCE_FIELDS = tuple(spec.name for spec in specs.RESOURCE)
POLICY_FIELDS = tuple(spec.name for spec in specs.POLICY)
STATUSES = (("", "Any"), ("in_service", "In service"), ("out_of_service", "Out of service"))


# --- resource types -------------------------------------------------------------------------------------


class TypeListView(LendingView):
    tab = "types"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        types = list(
            ResourceType.objects.filter(library=library)
            .annotate(resource_count=Count("resources"))
            .prefetch_related("centers")
        )
        rows = [{"type": t, "label": label, "depth": len(label) - len(t.name)} for t, label in tree_rows(types)]
        return render(request, "staff/lending/types.html", self.admin_context("Resource types") | {"rows": rows})


class TypeFormView(LendingForm):
    tab = "types"
    resource_type: ResourceType | None = None

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.RESOURCE_TYPE

    def load(self) -> ResourceType | None:
        library = self.enter()
        if "resource_type_id" not in self.kwargs:
            return None
        self.resource_type = ResourceType.objects.filter(library=library, pk=self.kwargs["resource_type_id"]).first()
        if self.resource_type is None:
            raise NotFound(f"There is no such resource type at {library.name}.")
        return self.resource_type

    def choices(self) -> Mapping[str, fields.Choices]:
        own = self.resource_type.pk if self.resource_type else None
        return {"parent": tuple(c for c in type_choices(self.library_id, empty="(top level)") if c[0] != str(own))}

    def groups(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        options = [(str(c.pk), c.name, "") for c in self.centers()]
        chosen = {str(v) for v in values.get("centers", [])}
        return [checkbox_group("centers", "Checkout centers lending it", options, chosen, errors)]

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        kind = self.resource_type
        action = (
            reverse("staff:lending:type-edit", kwargs={"resource_type_id": kind.pk})
            if kind
            else reverse("staff:lending:type-new")
        )
        return self.admin_context(f"Edit resource type {kind.name}" if kind else "New resource type") | {
            "intro": "Buffers apply to bookings made after a change; existing bookings keep their span.",
            "action": action,
            "back_url": reverse("staff:lending:types"),
            "back_label": "resource types",
            "submit": "Save type" if kind else "Create type",
        }

    def get(self, request: HttpRequest, resource_type_id: int | None = None) -> HttpResponse:
        kind = self.load()
        if kind is None:
            return self.render_form(
                {"visible_in_portal": True, "buffer_before_minutes": 0, "buffer_after_minutes": 0}, {}
            )
        values: dict[str, Any] = {name: getattr(kind, name) for name in TYPE_FIELDS}
        values["centers"] = [c.pk for c in kind.centers.all()]
        return self.render_form(values, {})

    def post(self, request: HttpRequest, resource_type_id: int | None = None) -> HttpResponse:
        kind = self.load()
        self.posted = read_post(request, specs.RESOURCE_TYPE) | {"centers": request.POST.getlist("centers")}
        saved = catalog.save_resource_type(actor=self.actor, library=self.enter(), resource_type=kind, data=self.posted)
        messages.success(request, f"Resource type {saved.name} {'saved' if kind else 'created'}.")
        return HttpResponseRedirect(reverse("staff:lending:types"))


# --- resources --------------------------------------------------------------------------------------------


class ResourceListView(LendingView):
    tab = "resources"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        found = Resource.objects.filter(library=library).select_related("resource_type", "center", "contained_in")
        chosen = {k: request.GET.get(k, "").strip() for k in ("resource_type", "center", "status", "q")}
        if chosen["resource_type"].isdigit():
            found = found.filter(resource_type_id=int(chosen["resource_type"]))
        if chosen["center"].isdigit():
            found = found.filter(center_id=int(chosen["center"]))
        now = clock.now()
        if chosen["status"] == "in_service":
            found = found.exclude(out_of_service_from__lte=now)
        elif chosen["status"] == "out_of_service":
            found = found.filter(out_of_service_from__lte=now)
        if chosen["q"]:
            found = found.filter(identifier__istartswith=chosen["q"]) | found.filter(name__icontains=chosen["q"])
        rows = [
            {"resource": r, "out": r.out_of_service_from is not None and r.out_of_service_from <= now}
            for r in found.order_by("name", "identifier")[:500]
        ]
        context = self.admin_context("Resources") | {
            "rows": rows,
            "chosen": chosen,
            "type_options": type_choices(library.pk, empty="Any"),
            "center_options": center_choices(self.centers(), empty="Any"),
            "status_options": STATUSES,
        }
        return render(request, "staff/lending/resources.html", context)


class _ResourcePage(LendingView):
    tab = "resources"
    resource: Resource | None = None

    def load(self) -> Resource:
        library = self.enter()
        self.resource = (
            Resource.objects.filter(library=library, pk=self.kwargs["resource_id"])
            .select_related("resource_type", "center")
            .first()
        )
        if self.resource is None:
            raise NotFound(f"There is no such resource at {library.name}.")
        return self.resource


class ResourceFormView(_ResourcePage, LendingForm):
    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.RESOURCE

    def choices(self) -> Mapping[str, fields.Choices]:
        own = str(self.resource.pk) if self.resource else ""
        return {
            "resource_type": type_choices(self.library_id),
            "center": center_choices(self.centers(), empty="—"),
            "contained_in": tuple(
                c for c in resource_choices(self.library_id, empty="(not part of a kit)") if c[0] != own
            ),
        }

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        item = self.resource
        action = (
            reverse("staff:lending:resource-edit", kwargs={"resource_id": item.pk})
            if item
            else reverse("staff:lending:resource-new")
        )
        extra: dict[str, Any] = {}
        if item:
            extra["service_url"] = reverse("staff:lending:resource-service", kwargs={"resource_id": item.pk})
        return (
            self.admin_context(f"Edit resource {item}" if item else "New resource")
            | extra
            | {
                "action": action,
                "back_url": reverse("staff:lending:resources"),
                "back_label": "resources",
                "submit": "Save resource" if item else "Create resource",
            }
        )

    def get(self, request: HttpRequest, resource_id: int | None = None) -> HttpResponse:
        item = self.load() if "resource_id" in self.kwargs else None
        self.enter()
        return self.render_form({name: getattr(item, name) for name in RESOURCE_FIELDS} if item else {}, {})

    def post(self, request: HttpRequest, resource_id: int | None = None) -> HttpResponse:
        item = self.load() if "resource_id" in self.kwargs else None
        self.posted = read_post(request, specs.RESOURCE)
        saved = catalog.save_resource(actor=self.actor, library=self.enter(), resource=item, data=self.posted)
        messages.success(request, f"Resource {saved} {'saved' if item else 'created'}.")
        return HttpResponseRedirect(reverse("staff:lending:resources"))


class ResourceServiceView(_ResourcePage, LendingForm):
    """Take a resource out of service from a date, or return it; shows the bookings that are affected."""

    template = "staff/lending/resource_service.html"

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.OUT_OF_SERVICE

    def affected(self, after: dt.datetime) -> list[Reservation]:
        item = self.resource
        if item is None:  # loaded by get() and post() first
            raise NotFound("Not found.")
        ids = commitments([item.pk], after).get(item.pk, [])
        return list(Reservation.objects.filter(pk__in=ids, state__in=list(OPEN_STATES)).select_related("patron"))

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        item = self.resource
        if item is None:  # loaded by get() and post() first
            raise NotFound("Not found.")
        since = item.out_of_service_from
        return self.admin_context(f"Service status of {item}") | {
            "resource": item,
            "out_since": since,
            "affected": self.affected(since or clock.now()),
            "action": reverse("staff:lending:resource-service", kwargs={"resource_id": item.pk}),
            "back_url": reverse("staff:lending:resource-edit", kwargs={"resource_id": item.pk}),
            "back_label": "the resource",
            "submit": "Take out of service",
        }

    def get(self, request: HttpRequest, resource_id: int) -> HttpResponse:
        self.load()
        return self.render_form({}, {})

    def post(self, request: HttpRequest, resource_id: int) -> HttpResponse:
        item = self.load()
        url = reverse("staff:lending:resource-service", kwargs={"resource_id": item.pk})
        if request.POST.get("return") == "yes":
            catalog.return_to_service(actor=self.actor, resource=item)
            messages.success(request, f"{item} is back in service.")
            return HttpResponseRedirect(url)
        self.posted = read_post(request, specs.OUT_OF_SERVICE)
        when: dt.datetime | None = None
        if self.posted["from_"].strip():
            try:
                when = dt.datetime.fromisoformat(self.posted["from_"].strip())
            except ValueError:
                raise FieldError("from_", "Give a date and time such as 2027-03-01 09:00.") from None
            if when.tzinfo is None:
                when = when.replace(tzinfo=self.zone())
        affected = catalog.take_out_of_service(
            actor=self.actor, resource=item, from_=when, comment=self.posted["comment"]
        )
        note = f" {len(affected)} open reservation(s) hold it: see below." if affected else ""
        messages.success(request, f"{item} is out of service.{note}")
        return HttpResponseRedirect(url)


# --- checkout-center policies -------------------------------------------------------------------------


class PolicyFormView(LendingForm):
    tab = "reservations"
    permission = Permission.CONFIGURE_LIBRARY
    place: Branch | None = None

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.POLICY

    def load(self) -> Branch:
        self.enter()
        self.place = self.center(self.kwargs["center_id"])
        return self.place

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        place = self.place
        if place is None:  # loaded by get() and post() first
            raise NotFound("Not found.")
        url = reverse("staff:lending:policy", kwargs={"center_id": place.pk})
        return self.admin_context(f"Reservation rules of {place.name}") | {
            "intro": f"Times are in {self.zone().key}. Lead time and duration are elapsed time.",
            "action": url,
            "back_url": reverse("staff:lending:index"),
            "back_label": "reservations",
            "submit": "Save rules",
        }

    def get(self, request: HttpRequest, center_id: int) -> HttpResponse:
        place = self.load()
        policy = CenterPolicy.objects.filter(center=place).first() or CenterPolicy(center=place)
        values: dict[str, Any] = {name: getattr(policy, name) for name in POLICY_FIELDS}
        values["delivery_locations"] = "\n".join(policy.delivery_locations or [])
        values["open_hours"] = json.dumps(policy.open_hours) if policy.open_hours else ""
        return self.render_form(values, {})

    def post(self, request: HttpRequest, center_id: int) -> HttpResponse:
        place = self.load()
        self.posted = read_post(request, specs.POLICY)
        data: dict[str, Any] = dict(self.posted)
        text = self.posted["open_hours"].strip()
        try:
            data["open_hours"] = json.loads(text) if text else {}
        except ValueError:
            raise FieldError("open_hours", 'Write the hours as JSON, e.g. {"mon": [["09:00", "17:00"]]}.') from None
        reservation_services.save_center_policy(actor=self.actor, center=place, data=data)
        messages.success(request, f"Reservation rules of {place.name} saved.")
        return HttpResponseRedirect(reverse("staff:lending:policy", kwargs={"center_id": place.pk}))


# --- authorizations -----------------------------------------------------------------------------------


class AuthorizationsView(LendingForm):
    """A patron's authorizations for resource types: the list, and a form to grant (or renew) one."""

    tab = "types"
    template = "staff/lending/authorizations.html"
    patron: Patron | None = None

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.GRANT

    def load(self) -> Patron:
        self.enter()
        self.patron = patron_for_staff(
            self.actor, self.kwargs["patron_id"], Permission.MANAGE_RESOURCES, library_id=self.library_id
        )
        return self.patron

    def choices(self) -> Mapping[str, fields.Choices]:
        return {"resource_type": type_choices(self.library_id)}

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        patron = self.patron
        if patron is None:  # loaded by get() and post() first
            raise NotFound("Not found.")
        held = Authorization.objects.filter(patron=patron).select_related("resource_type", "granted_by")
        return self.admin_context(f"Authorizations of {patron.display_name}") | {
            "patron": patron,
            "authorizations": held.order_by("resource_type__name"),
            "today": clock.today(self.zone().key),
            "action": reverse("staff:lending:authorizations", kwargs={"patron_id": patron.pk}),
            "back_url": reverse("staff:patron-detail", kwargs={"pk": patron.pk}),
            "back_label": "the patron",
            "submit": "Grant",
        }

    def get(self, request: HttpRequest, patron_id: int) -> HttpResponse:
        self.load()
        return self.render_form({}, {})

    def post(self, request: HttpRequest, patron_id: int) -> HttpResponse:
        patron = self.load()
        self.posted = read_post(request, specs.GRANT)
        kind = ResourceType.objects.filter(library_id=self.library_id, pk=_pk(self.posted["resource_type"])).first()
        if kind is None:
            raise FieldError("resource_type", "Choose a resource type from the list.")
        catalog.grant_authorization(
            actor=self.actor, patron=patron, resource_type=kind, expires_on=self.posted["expires_on"] or None
        )
        messages.success(request, f"{patron.display_name} is authorized for {kind.name}.")
        return HttpResponseRedirect(reverse("staff:lending:authorizations", kwargs={"patron_id": patron.pk}))


class RevokeAuthorizationView(LendingView):
    def back_url(self) -> str | None:
        return reverse("staff:lending:authorizations", kwargs={"patron_id": self.kwargs["patron_id"]})

    def post(self, request: HttpRequest, patron_id: int, resource_type_id: int) -> HttpResponse:
        self.enter()
        patron = patron_for_staff(self.actor, patron_id, Permission.MANAGE_RESOURCES, library_id=self.library_id)
        kind = ResourceType.objects.filter(library_id=self.library_id, pk=resource_type_id).first()
        if kind is None:
            raise NotFound("There is no such resource type here.")
        catalog.revoke_authorization(actor=self.actor, patron=patron, resource_type=kind)
        messages.success(request, f"Authorization for {kind.name} revoked.")
        return HttpResponseRedirect(reverse("staff:lending:authorizations", kwargs={"patron_id": patron.pk}))


def _pk(value: str) -> int:
    return int(value) if value.strip().isdigit() else -1
