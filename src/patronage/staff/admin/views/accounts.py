"""Staff accounts: who works at this library, with which roles, and new accounts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import FieldError, NotFound
from patronage.libraries import services as library_services
from patronage.libraries.models import Branch, Membership, Role

from ... import fields
from .. import specs
from .base import AdminView, FormPage, checkbox_group, permission_labels, read_post

SIGN_IN_LATER = (
    "{username} cannot sign in yet: no password was set. On the server, run: patronage changepassword {username}"
)


class MembershipListView(AdminView):
    tab = "staff"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        memberships = (
            Membership.objects.filter(library=library)
            .select_related("user", "home_branch")
            .prefetch_related("roles")
            .order_by("user__username")
        )
        context = self.admin_context("Staff accounts") | {"memberships": memberships}
        return render(request, "staff/admin/memberships.html", context)


class _MembershipPage(AdminView):
    tab = "staff"
    membership: Membership | None = None

    def load(self) -> Membership:
        """The membership named in the address, of the current library only."""
        library = self.enter()
        self.membership = (
            Membership.objects.filter(library=library, pk=self.kwargs["membership_id"])
            .select_related("user", "home_branch")
            .first()
        )
        if self.membership is None:
            raise NotFound(f"There is no such staff account at {library.name}.")
        return self.membership

    def back_url(self) -> str | None:
        return reverse("staff:admin:memberships")


class MembershipFormView(_MembershipPage, FormPage):
    template = "staff/admin/membership_form.html"
    manages_account = True

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        if self.membership is None:
            return (*specs.ACCOUNT, *specs.PASSWORD_NEW, *specs.HOME_BRANCH)
        if self.manages_account:
            return (*specs.ACCOUNT, *specs.ACTIVE, *specs.PASSWORD_CHANGE, *specs.HOME_BRANCH)
        return specs.HOME_BRANCH

    def choices(self) -> Mapping[str, fields.Choices]:
        branches = Branch.objects.filter(library_id=self.library_id).order_by("name").values_list("pk", "name")
        return {"home_branch": (("", "None"), *((str(pk), name) for pk, name in branches))}

    def groups(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> list[dict[str, Any]]:
        roles = Role.objects.filter(library_id=self.library_id).order_by("name")
        options = [(str(role.pk), role.name, ", ".join(permission_labels(role.permissions or []))) for role in roles]
        chosen = {str(v) for v in values.get("roles", [])}
        return [checkbox_group("roles", "Roles at this library", options, chosen, errors)]

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        membership = self.membership
        if membership is None:
            title, action = "New staff account", reverse("staff:admin:membership-new")
        else:
            title = f"Edit staff account {membership.user.get_username()}"
            action = reverse("staff:admin:membership-edit", kwargs={"membership_id": membership.pk})
        return self.admin_context(title) | {
            "membership": membership,
            "manages_account": self.manages_account,
            "action": action,
            "back_url": reverse("staff:admin:memberships"),
            "back_label": "staff accounts",
            "submit": "Save staff account" if membership else "Create staff account",
        }

    def _load_for_form(self) -> Membership | None:
        self.enter()
        if "membership_id" not in self.kwargs:
            return None
        membership = self.load()
        self.manages_account = library_services.may_manage_account(self.actor, membership.user)
        return membership

    def get(self, request: HttpRequest, membership_id: int | None = None) -> HttpResponse:
        membership = self._load_for_form()
        if membership is None:
            return self.render_form({}, {})
        user = membership.user
        values: dict[str, Any] = {
            "username": user.get_username(),
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "is_active": user.is_active,
            "home_branch": membership.home_branch_id or "",
            "roles": [str(pk) for pk in membership.roles.values_list("pk", flat=True)],
        }
        return self.render_form(values, {})

    def post(self, request: HttpRequest, membership_id: int | None = None) -> HttpResponse:
        membership = self._load_for_form()
        library = self.enter()
        posted: dict[str, Any] = read_post(request, self.specs()) | {"roles": request.POST.getlist("roles")}
        password = posted.pop("password", "")
        again = posted.pop("password_again", "")
        # Passwords are never sent back into the form.
        self.posted = posted
        if password != again:
            raise FieldError("password_again", "The two passwords differ; type the same password in both fields.")
        data = {key: value for key, value in posted.items() if key != "roles"}
        if password:
            data["password"] = password
        saved = library_services.save_membership(
            actor=self.actor, library=library, membership=membership, data=data, roles=posted["roles"]
        )
        username = saved.user.get_username()
        if membership is not None:
            messages.success(request, f"Staff account {username} saved.")
        elif saved.user.memberships.count() > 1:
            messages.success(request, f"The existing account {username} now also works at {library.name}.")
        else:
            messages.success(request, f"Staff account {username} created.")
        if not saved.user.has_usable_password():
            messages.warning(request, SIGN_IN_LATER.format(username=username))
        return HttpResponseRedirect(reverse("staff:admin:memberships"))


class MembershipRemoveView(_MembershipPage):
    """Asks to confirm; the account itself is kept, it only loses its place at this library."""

    def _page(self, membership: Membership) -> HttpResponse:
        context = self.admin_context(f"Remove {membership.user.get_username()}") | {"membership": membership}
        return render(self.request, "staff/admin/membership_remove.html", context)

    def get(self, request: HttpRequest, membership_id: int) -> HttpResponse:
        return self._page(self.load())

    def post(self, request: HttpRequest, membership_id: int) -> HttpResponse:
        membership = self.load()
        if request.POST.get("confirm") != "yes":
            return self._page(membership)
        username = membership.user.get_username()
        library = self.enter()
        library_services.remove_membership(actor=self.actor, library=library, membership=membership)
        messages.success(request, f"{username} no longer works at {library.name}.")
        return HttpResponseRedirect(reverse("staff:admin:memberships"))
