"""Patron groups on the staff pages: Group Member Details, moving a patron in by barcode, removing a member,
the guardian role, and cloning a patron. Reached from any member's patron page (Other)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import FieldError
from patronage.groups import queries as group_queries
from patronage.groups import services as group_services
from patronage.groups.models import PatronGroup
from patronage.libraries.permissions import Permission
from patronage.patrons import access
from patronage.patrons.models import Patron

from .. import fields
from .detail import PatronFormView

NEW_GROUP = (
    fields.FieldSpec("name", "Group name", required=True, help="E.g. Lovelace family or Class 4b."),
    fields.FieldSpec("kind", "Kind", kind="select", required=True, choices=tuple(PatronGroup.Kind.choices)),
)
MOVE_BARCODE = (
    fields.FieldSpec(
        "barcode", "Patron barcode", required=True, autocomplete="off",
        help="Scan the card, or type or paste its number.",
    ),
)  # fmt: skip
CLONE = (
    fields.FieldSpec("first_name", "First name", required=True, autocomplete="off"),
    fields.FieldSpec("last_name", "Last name", required=True, autocomplete="off"),
    fields.FieldSpec("birth_date", "Birth date", kind="date"),
    fields.FieldSpec("barcode", "Barcode", autocomplete="off", help="Optional: the new patron's card number."),
)


def _group_url(patron_pk: int) -> str:
    return reverse("staff:patron-group", kwargs={"pk": patron_pk})


class _GroupPageView(PatronFormView):
    def back_url(self) -> str | None:
        return _group_url(self.patron.pk) if self.patron is not None else None

    def group_of(self, patron: Patron) -> PatronGroup | None:
        membership = group_queries.membership_of(patron.pk)
        return membership.group if membership else None

    def require_group(self, patron: Patron) -> PatronGroup:
        group = self.group_of(patron)
        if group is None:
            raise group_services.MembershipChanged(f"{patron.display_name} is not in a group (any more).")
        return group

    def member(self, patron_id: int) -> Patron:
        """Another patron of this library, for an action on their membership."""
        return access.patron_for_staff(self.actor, patron_id, Permission.EDIT_PATRON, library_id=self.library_id)


class GroupDetailsView(_GroupPageView):
    """Group Member Details, or a form to start a group when the patron is in none."""

    def _page(
        self, patron: Patron, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200
    ) -> HttpResponse:
        group = self.group_of(patron)
        bound = fields.bind(NEW_GROUP, values, errors)
        rows = group_queries.member_rows(group.pk) if group else []
        context = self.patron_context(patron, "data") | {
            "group": group,
            "rows": rows,
            "group_balance": sum((r.balance for r in rows), start=Decimal("0.00")),
            "currency": patron.library.currency,
            "fields": bound,
            "errors": fields.error_summary(errors, bound),
        }
        return render(self.request, "staff/patron/group.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(read=True)
        group = self.group_of(patron)
        values = (
            {"kind": group.kind, "name": group.name}
            if group
            else {"kind": "family", "name": f"{patron.last_name} family"}
        )
        return self._page(patron, values, {})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Start a group with this patron in it, or rename the patron's group and change its kind."""
        patron = self.load(Permission.EDIT_PATRON)
        self.posted = {s.name: request.POST.get(s.name, "") for s in NEW_GROUP}
        group = self.group_of(patron)
        if group is None:
            group = group_services.create_group(actor=self.actor, patron=patron, data=self.posted)
            messages.success(request, f"The group {group.name} was created with {patron.display_name} in it.")
        else:
            group = group_services.update_group(actor=self.actor, group=group, data=self.posted)
            messages.success(request, f"The group {group.name} is saved.")
        return HttpResponseRedirect(_group_url(patron.pk))


class GroupMoveView(_GroupPageView):
    """Move Another Patron to the Group: barcode, then confirm (Move User)."""

    def _page(
        self,
        patron: Patron,
        values: Mapping[str, Any],
        errors: Mapping[str, list[str]],
        status: int = 200,
        candidate: dict[str, Any] | None = None,
    ) -> HttpResponse:
        bound = fields.bind(MOVE_BARCODE, values, errors)
        context = self.patron_context(patron, "data") | {
            "group": self.require_group(patron),
            "fields": bound,
            "errors": fields.error_summary(errors, bound),
            "candidate": candidate,
        }
        return render(self.request, "staff/patron/group_move.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON, read=True)
        return self._page(patron, {}, {})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON)
        self.posted = {"barcode": request.POST.get("barcode", "")}
        group = self.require_group(patron)
        if request.POST.get("confirm") != "move":
            found = group_services.find_by_barcode(group, self.posted["barcode"])
            leaving = group_queries.membership_of(found.pk)
            if leaving is not None and leaving.group_id == group.pk:
                raise FieldError("barcode", f"{found.display_name} is already in this group.")
            candidate = {
                "patron": found,
                "leaving": leaving.group if leaving else None,
                "barcode": self.posted["barcode"].strip(),
            }
            return self._page(patron, self.posted, {}, candidate=candidate)
        if request.POST.get("group") != str(group.pk):
            raise group_services.MembershipChanged(
                f"{patron.display_name}'s group changed meanwhile; start the move again."
            )
        moving = self.member(_int(request.POST.get("patron", "")))
        expected = request.POST.get("from_group", "")
        group_services.move_patron(
            actor=self.actor, group=group, patron=moving, expected_from=int(expected) if expected.isdigit() else None
        )
        messages.success(request, f"{moving.display_name} was moved to the group {group.name}.")
        return HttpResponseRedirect(_group_url(patron.pk))


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise FieldError("patron", "The patron to move is missing; scan the barcode again.") from None


class GroupMemberRemoveView(_GroupPageView):
    def get(self, request: HttpRequest, pk: int, patron_id: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON, read=True)
        group = self.require_group(patron)
        member = self.member(patron_id)
        last = len(group_queries.member_rows(group.pk)) == 1
        context = self.patron_context(patron, "data") | {"group": group, "member": member, "last": last}
        return render(request, "staff/patron/group_remove.html", context)

    def post(self, request: HttpRequest, pk: int, patron_id: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON)
        group = self.require_group(patron)
        member = self.member(patron_id)
        removed = group_services.remove_member(actor=self.actor, group=group, patron=member)
        text = f"{member.display_name} was removed from the group {group.name}."
        messages.success(request, text + (" It had no other members and was removed too." if removed else ""))
        target = patron if member.pk != patron.pk or not removed else member
        return HttpResponseRedirect(_group_url(target.pk))


class GroupMemberRoleView(_GroupPageView):
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int, patron_id: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON)
        group = self.require_group(patron)
        member = self.member(patron_id)
        role = request.POST.get("role", "")
        group_services.set_role(actor=self.actor, group=group, patron=member, role=role)
        if role:
            messages.success(request, f"{member.display_name} is now a guardian of {group.name}.")
        else:
            messages.success(request, f"{member.display_name} is no longer a guardian of {group.name}.")
        return HttpResponseRedirect(_group_url(patron.pk))


class ClonePatronView(_GroupPageView):
    """A new patron from this one: address, contact and patron type copied; both end in one group."""

    def _page(
        self, patron: Patron, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200
    ) -> HttpResponse:
        bound = fields.bind(CLONE, values, errors)
        context = self.patron_context(patron, "data") | {
            "group": self.group_of(patron),
            "fields": bound,
            "errors": fields.error_summary(errors, bound),
        }
        return render(self.request, "staff/patron/group_clone.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON, read=True)
        return self._page(patron, {"last_name": patron.last_name}, {})

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.EDIT_PATRON)
        self.posted = {s.name: request.POST.get(s.name, "") for s in CLONE}
        data = {k: v for k, v in self.posted.items() if k != "barcode"}
        if not data["birth_date"]:
            data.pop("birth_date")
        clone, group = group_services.clone_patron(
            actor=self.actor, source=patron, data=data, barcode=self.posted["barcode"].strip() or None
        )
        messages.success(request, f"{clone.display_name} was created from {patron.display_name}, in {group.name}.")
        return HttpResponseRedirect(reverse("staff:patron-detail", kwargs={"pk": clone.pk}))
