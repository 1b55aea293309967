"""The start page of the section, the library settings, branches and patron types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import NotFound
from patronage.credentials import services as credential_services
from patronage.libraries import services as library_services
from patronage.libraries.models import Branch
from patronage.patrons import services as patron_services
from patronage.patrons.models import PatronType

from ... import fields
from .. import specs
from .base import TABS, AdminView, FormPage, checkbox_group, read_post

LIBRARY_FIELDS = ("name", "currency", "time_zone", "country", "lending_history_retention_days")
BRANCH_FIELDS = ("code", "name", "email", "is_checkout_center")
PATRON_TYPE_FIELDS = ("code", "name", "fine_limit", "expiry_months", "loan_limit", "may_self_update", "may_use_ill")

# What each area of the section is for, shown on the start page.
DESCRIPTIONS = {
    "settings": "The library's name, currency, time zone, country and lending history retention.",
    "branches": "The places of the library; which of them are checkout centers.",
    "patron-types": "Fine limit, expiry period, loan limit, online updates and interlibrary loan per type.",
    "roles": "Named sets of permissions given to staff.",
    "sign-in": "Let the institution's LDAP directory check the portal passwords of some or all patrons.",
    "staff": "Who works at this library, with which roles; new staff accounts.",
    "audit": "Every change and every read of personal data at this library, newest first.",
    "tokens": "Your own tokens for the REST API: create, see when they were used, revoke.",
    "notices": "When reminder notices are e-mailed and which ones patrons may opt out of.",
    "outbox": "Every e-mail the library sends: waiting, sent and failed messages, and sending a failed one again.",
    "updates": "What patrons may change online and whether staff verify it first, per branch; postal codes.",
    "clients": "The systems that ask about patrons (ReShare, self-check machines): logins, secrets, addresses.",
    "ill": "Which patrons would be refused interlibrary loan, grouped by cause, and which types may use it.",
}


class IndexView(AdminView):
    permission = None

    def get(self, request: HttpRequest) -> HttpResponse:
        context = self.admin_context("Administration")
        areas = [
            {"label": label, "url": reverse(route), "description": DESCRIPTIONS[key]}
            for key, label, route, needs in TABS
            if needs is None or self.can(needs)
        ]
        return render(request, "staff/admin/index.html", context | {"areas": areas})


class LibrarySettingsView(FormPage):
    tab = "settings"

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.LIBRARY_SETTINGS

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        library = self.enter()
        return self.admin_context("Library settings") | {
            "intro": f"The library's code is {library.code}; it identifies the library to other systems and "
            "does not change.",
            "action": reverse("staff:admin:settings"),
            "back_url": reverse("staff:admin:index"),
            "back_label": "administration",
            "submit": "Save settings",
        }

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        return self.render_form({name: getattr(library, name) for name in LIBRARY_FIELDS}, {})

    def post(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        self.posted = read_post(request, specs.LIBRARY_SETTINGS)
        data = dict(self.posted)
        if "lending_history_retention_days" not in request.POST:
            del data["lending_history_retention_days"]  # not sent: unchanged (an empty field means forever)
        library_services.save_library(actor=self.actor, library=library, data=data)
        messages.success(request, "Library settings saved.")
        return HttpResponseRedirect(reverse("staff:admin:settings"))


class BranchListView(AdminView):
    tab = "branches"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        branches = Branch.objects.filter(library=library).order_by("name")
        return render(request, "staff/admin/branches.html", self.admin_context("Branches") | {"branches": branches})


class BranchFormView(FormPage):
    tab = "branches"
    branch: Branch | None = None

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.BRANCH

    def load(self) -> Branch | None:
        """The branch named in the address (of the current library only), or None on the New page."""
        library = self.enter()
        if "branch_id" not in self.kwargs:
            return None
        self.branch = Branch.objects.filter(library=library, pk=self.kwargs["branch_id"]).first()
        if self.branch is None:
            raise NotFound(f"There is no such branch at {library.name}.")
        return self.branch

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        branch = self.branch
        title = f"Edit branch {branch.name}" if branch else "New branch"
        action = (
            reverse("staff:admin:branch-edit", kwargs={"branch_id": branch.pk})
            if branch
            else reverse("staff:admin:branch-new")
        )
        return self.admin_context(title) | {
            "action": action,
            "back_url": reverse("staff:admin:branches"),
            "back_label": "branches",
            "submit": "Save branch" if branch else "Create branch",
        }

    def get(self, request: HttpRequest, branch_id: int | None = None) -> HttpResponse:
        branch = self.load()
        return self.render_form({name: getattr(branch, name) for name in BRANCH_FIELDS} if branch else {}, {})

    def post(self, request: HttpRequest, branch_id: int | None = None) -> HttpResponse:
        branch = self.load()
        self.posted = read_post(request, specs.BRANCH)
        saved = library_services.save_branch(actor=self.actor, library=self.enter(), branch=branch, data=self.posted)
        messages.success(request, f"Branch {saved.name} {'saved' if branch else 'created'}.")
        return HttpResponseRedirect(reverse("staff:admin:branches"))


class PatronTypeListView(AdminView):
    tab = "patron-types"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        types = PatronType.objects.filter(library=library).annotate(patron_count=Count("patrons")).order_by("name")
        context = self.admin_context("Patron types") | {"types": types, "currency": library.currency}
        return render(request, "staff/admin/patron_types.html", context)


class PatronTypeFormView(FormPage):
    tab = "patron-types"
    patron_type: PatronType | None = None

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.PATRON_TYPE

    def load(self) -> PatronType | None:
        """The type named in the address (of the current library only), or None on the New page."""
        library = self.enter()
        if "type_id" not in self.kwargs:
            return None
        self.patron_type = PatronType.objects.filter(library=library, pk=self.kwargs["type_id"]).first()
        if self.patron_type is None:
            raise NotFound(f"There is no such patron type at {library.name}.")
        return self.patron_type

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        patron_type = self.patron_type
        title = f"Edit patron type {patron_type.name}" if patron_type else "New patron type"
        action = (
            reverse("staff:admin:patron-type-edit", kwargs={"type_id": patron_type.pk})
            if patron_type
            else reverse("staff:admin:patron-type-new")
        )
        currency = self.enter().currency
        return self.admin_context(title) | {
            "intro": f"Amounts are in {currency}. Changes apply at once to every patron of the type.",
            "action": action,
            "back_url": reverse("staff:admin:patron-types"),
            "back_label": "patron types",
            "submit": "Save patron type" if patron_type else "Create patron type",
        }

    def get(self, request: HttpRequest, type_id: int | None = None) -> HttpResponse:
        # A new type starts from the model's defaults (fine limit 5.00, twelve months, may self-update).
        shown = self.load() or PatronType(library=self.enter(), code="", name="")
        return self.render_form({name: getattr(shown, name) for name in PATRON_TYPE_FIELDS}, {})

    def post(self, request: HttpRequest, type_id: int | None = None) -> HttpResponse:
        patron_type = self.load()
        self.posted = read_post(request, specs.PATRON_TYPE)
        saved = patron_services.save_patron_type(
            actor=self.actor, library=self.enter(), patron_type=patron_type, data=self.posted
        )
        messages.success(request, f"Patron type {saved.name} {'saved' if patron_type else 'created'}.")
        return HttpResponseRedirect(reverse("staff:admin:patron-types"))


class InstitutionSignInView(FormPage):
    """The library's institution sign-in (LDAP). The search account's password is never shown back."""

    tab = "sign-in"

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return specs.INSTITUTION_SIGN_IN

    def groups(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        types = PatronType.objects.filter(library=self.enter()).order_by("name")
        options = [(str(t.pk), t.name, "") for t in types]
        chosen = {str(v) for v in values.get("patron_types", [])}
        return [
            checkbox_group("patron_types", "Patron types who sign in through the institution", options, chosen, errors)
        ]

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        stored = credential_services.institution_settings(self.enter())
        return self.admin_context("Institution sign-in") | {
            "intro": "Patrons of the chosen types sign in to the portal with their institution's account: the "
            "password is checked by the institution's LDAP directory, and the entry's institution id must equal "
            "the patron's Person-ID. "
            + (
                "A search account password is stored."
                if stored.bind_password
                else "No search account password is stored."
            ),
            "action": reverse("staff:admin:institution-sign-in"),
            "back_url": reverse("staff:admin:index"),
            "back_label": "administration",
            "submit": "Save institution sign-in",
        }

    def get(self, request: HttpRequest) -> HttpResponse:
        current = credential_services.institution_settings(self.enter())
        values: dict[str, Any] = {name: getattr(current, name) for name in credential_services.INSTITUTION_FIELDS
                                  if name not in {"bind_password", "patron_types"}}  # fmt: skip
        values["patron_types"] = [t.pk for t in current.patron_types.all()] if current.pk else []
        return self.render_form(values, {})

    def post(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        data: dict[str, Any] = read_post(request, specs.INSTITUTION_SIGN_IN)
        data["patron_types"] = request.POST.getlist("patron_types")
        # A bad form is shown again without the password typed into it.
        self.posted = {**data, "bind_password": ""}
        credential_services.save_institution_sign_in(actor=self.actor, library=library, data=data)
        messages.success(request, "Institution sign-in saved.")
        return HttpResponseRedirect(reverse("staff:admin:institution-sign-in"))
