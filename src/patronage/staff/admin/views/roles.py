"""Roles: named sets of permissions, with a checkbox per permission."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import NotFound
from patronage.libraries import services as library_services
from patronage.libraries.models import Role
from patronage.libraries.permissions import Permission

from ... import fields
from .. import specs
from .base import AdminView, FormPage, checkbox_group, permission_labels, read_post


class RoleListView(AdminView):
    tab = "roles"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        roles = Role.objects.filter(library=library).annotate(holders=Count("memberships")).order_by("name")
        rows = [{"role": role, "labels": permission_labels(role.permissions or [])} for role in roles]
        return render(request, "staff/admin/roles.html", self.admin_context("Roles") | {"rows": rows})


class _RolePage(AdminView):
    tab = "roles"
    role: Role | None = None

    def load(self) -> Role:
        """The role named in the address, of the current library only."""
        library = self.enter()
        self.role = Role.objects.filter(library=library, pk=self.kwargs["role_id"]).first()
        if self.role is None:
            raise NotFound(f"There is no such role at {library.name}.")
        return self.role

    def load_if_named(self) -> Role | None:
        """The role on an Edit page; None on the New page."""
        self.enter()
        return self.load() if "role_id" in self.kwargs else None

    def back_url(self) -> str | None:
        return reverse("staff:admin:roles")


class RoleFormView(_RolePage, FormPage):
    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.ROLE

    def groups(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        options = [(p.value, p.label, "") for p in Permission]
        return [checkbox_group("permissions", "Permissions", options, set(values.get("permissions", [])), errors)]

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        role = self.role
        title = f"Edit role {role.name}" if role else "New role"
        action = (
            reverse("staff:admin:role-edit", kwargs={"role_id": role.pk}) if role else reverse("staff:admin:role-new")
        )
        return self.admin_context(title) | {
            "intro": "Staff holding this role get these permissions at this library from their next page on.",
            "action": action,
            "back_url": reverse("staff:admin:roles"),
            "back_label": "roles",
            "submit": "Save role" if role else "Create role",
        }

    def get(self, request: HttpRequest, role_id: int | None = None) -> HttpResponse:
        role = self.load_if_named()
        values: dict[str, Any] = {"name": role.name, "permissions": list(role.permissions or [])} if role else {}
        return self.render_form(values, {})

    def post(self, request: HttpRequest, role_id: int | None = None) -> HttpResponse:
        role = self.load_if_named()
        self.posted = read_post(request, specs.ROLE) | {"permissions": request.POST.getlist("permissions")}
        saved = library_services.save_role(
            actor=self.actor,
            library=self.enter(),
            role=role,
            name=self.posted["name"],
            permissions=self.posted["permissions"],
        )
        messages.success(request, f"Role {saved.name} {'saved' if role else 'created'}.")
        return HttpResponseRedirect(reverse("staff:admin:roles"))


class RoleDeleteView(_RolePage):
    """Asks to confirm; a role still held by staff cannot be deleted, and the page says so."""

    def _page(self, role: Role) -> HttpResponse:
        context = self.admin_context(f"Delete role {role.name}") | {"role": role, "holders": role.memberships.count()}
        return render(self.request, "staff/admin/role_delete.html", context)

    def get(self, request: HttpRequest, role_id: int) -> HttpResponse:
        role = self.load()
        return self._page(role)

    def post(self, request: HttpRequest, role_id: int) -> HttpResponse:
        role = self.load()
        if request.POST.get("confirm") != "yes":
            return self._page(role)
        name = role.name
        library_services.delete_role(actor=self.actor, library=self.enter(), role=role)
        messages.success(request, f"Role {name} deleted.")
        return HttpResponseRedirect(reverse("staff:admin:roles"))
