"""What every administration page shares: its permission, its tabs and the form page pattern."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from patronage.core.errors import NotFound
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission

from ... import fields
from ...auth import StaffView

CONFIGURE = Permission.CONFIGURE_LIBRARY

# The tabs of the section: key, label, route and the permission that shows it (None: every staff member).
TABS: tuple[tuple[str, str, str, Permission | None], ...] = (
    ("settings", "Library settings", "staff:admin:settings", CONFIGURE),
    ("branches", "Branches", "staff:admin:branches", CONFIGURE),
    ("patron-types", "Patron types", "staff:admin:patron-types", CONFIGURE),
    ("sign-in", "Institution sign-in", "staff:admin:institution-sign-in", CONFIGURE),
    ("roles", "Roles", "staff:admin:roles", CONFIGURE),
    ("staff", "Staff accounts", "staff:admin:memberships", CONFIGURE),
    ("audit", "Audit log", "staff:admin:audit-log", Permission.VIEW_AUDIT_LOG),
    ("notices", "Reminder notices", "staff:admin:notices", CONFIGURE),
    ("outbox", "E-mail outbox", "staff:admin:outbox", CONFIGURE),
    ("updates", "Patron access options", "staff:admin:updates", CONFIGURE),
    ("tokens", "My API tokens", "staff:admin:tokens", None),
    ("clients", "Protocol clients", "staff:admin:clients", CONFIGURE),
    ("ill", "Interlibrary loan", "staff:admin:ill", Permission.VIEW_PATRONS),
)


def permission_labels(codes: list[str]) -> list[str]:
    """The labels of permission codes, in the order of ``Permission``; unknown codes are left out."""
    chosen = set(codes)
    return [p.label for p in Permission if p.value in chosen]


def read_post(request: HttpRequest, specs: tuple[fields.FieldSpec, ...]) -> dict[str, str]:
    """The posted values of a form's fields; an unticked checkbox is sent as nothing, read as ""."""
    return {spec.name: request.POST.get(spec.name, "") for spec in specs}


class _PermissionFirst(View):
    """Checks the page's permission before any handler runs.

    It comes after ``StaffView`` in the order of classes, so it runs inside ``StaffView.dispatch``: the
    user's permissions are known by then and a refusal becomes the usual 403 page.
    """

    def check_permission(self) -> None:
        raise NotImplementedError

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        self.check_permission()
        return super().dispatch(request, *args, **kwargs)


class AdminView(StaffView, _PermissionFirst):
    """A page of the Administration section.

    ``permission`` is needed at the current library for every method; objects are loaded filtered by
    that library, so another library's object is "not found", exactly like a missing one.
    """

    permission: Permission | None = CONFIGURE
    section = "admin"
    tab = ""

    def check_permission(self) -> None:
        if self.permission is not None:
            self.require(self.permission)

    def enter(self) -> Library:
        """The library the page is about (after checking the page's permission once more)."""
        self.check_permission()
        if self.library is None:
            raise NotFound("You are not a member of any library.")
        return self.library

    def admin_context(self, title: str) -> dict[str, Any]:
        tabs = [
            {"key": key, "label": label, "url": reverse(route), "current": key == self.tab}
            for key, label, route, needs in TABS
            if needs is None or self.can(needs)
        ]
        return self.base_context() | {"section": self.section, "tabs": tabs, "title": title}


class FormPage(AdminView):
    """A page with one form. Bad input re-renders it with the field errors and status 400."""

    template = "staff/admin/form.html"
    posted: dict[str, Any] | None = None

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        raise NotImplementedError

    def choices(self) -> Mapping[str, fields.Choices]:
        return {}

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        """Title, heading, form action, back link and button label; more for forms with extra parts."""
        raise NotImplementedError

    def groups(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        """Groups of checkboxes (one name, many values), each {"field": BoundField, "options": [...]}."""
        return []

    def render_form(
        self, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200
    ) -> HttpResponse:
        bound = fields.bind(self.specs(), values, errors, choices=self.choices())
        groups = self.groups(values, errors)
        context = self.page_context(values, errors) | {
            "fields": bound,
            "groups": groups,
            "errors": fields.error_summary(errors, [*bound, *(g["field"] for g in groups)]),
        }
        return render(self.request, self.template, context, status=status)

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        posted = self.posted
        if posted is None:
            return None
        return lambda errors: self.render_form(posted, errors, status=400)


def checkbox_group(
    name: str, label: str, options: list[tuple[str, str, str]], chosen: set[str], errors: Mapping[str, list[str]]
) -> dict[str, Any]:
    """A fieldset of checkboxes sending ``name`` once per ticked option; options are (value, label, help)."""
    spec = fields.FieldSpec(name, label, kind="checkbox-group")
    field = fields.BoundField(spec=spec, html_name=name, value="", errors=list(errors.get(name, ())))
    return {
        "field": field,
        "options": [
            {"value": value, "label": text, "help": help_text, "checked": value in chosen, "id": f"f-{name}-{value}"}
            for value, text, help_text in options
        ],
    }
