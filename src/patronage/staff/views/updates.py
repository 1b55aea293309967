"""Resolve a Verify Patron block: the queue of pending update requests per branch, one request with the old
and new values side by side, and its Verify and Reject actions. Needs the permission to edit patron data.
Requests are loaded through ``updates.services.request_for_staff``: another library's is "not found"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import NotFound
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.patrons.validation import display_phone
from patronage.updates import queries, services
from patronage.updates.models import UpdateRequest

from .. import fields
from ..auth import StaffView

PAGE = 50
EDIT = Permission.EDIT_PATRON
REASON = fields.FieldSpec(
    "reason", "Why it is rejected", kind="textarea", required=True,
    help="The patron reads this in an e-mail and in the portal, e.g. \"The postal code does not match the street.\"",
)  # fmt: skip


def _address_text(address: Mapping[str, Any] | None) -> str:
    return ", ".join(str(v) for v in (address or {}).values() if v) or "(none)"


def side_by_side(request: UpdateRequest, country: str) -> list[dict[str, str]]:
    """One row per changed detail: what the record held when the patron asked, and what they asked for.

    Phones show in the national format of the library's ``country`` (as typed when validation was off)."""
    rows: list[dict[str, str]] = []
    for key, new in request.new.items():
        old = request.old.get(key)
        if key == "address":
            rows.append({"label": "Home address", "old": _address_text(old), "new": _address_text(new)})
        elif key == "phones":
            for kind, number in new.items():
                before = display_phone((old or {}).get(kind) or "", country) or "(none)"
                after = display_phone(number or "", country) or "(removed)"
                rows.append({"label": f"{kind.title()} phone", "old": before, "new": after})
        else:
            label = "Primary e-mail" if key == "primary_email" else "Alternate e-mail"
            rows.append({"label": label, "old": str(old or "(none)"), "new": str(new or "(removed)")})
    return rows


class _UpdatesView(StaffView):
    section = "update-requests"

    def enter(self) -> None:
        self.require(EDIT)
        if self.library is None:
            raise NotFound("You are not a member of any library.")

    def context(self, title: str) -> dict[str, Any]:
        return self.base_context() | {"section": self.section, "title": title}


class UpdateRequestListView(_UpdatesView):
    def get(self, request: HttpRequest) -> HttpResponse:
        self.enter()
        branches = list(Branch.objects.filter(library_id=self.library_id).order_by("name"))
        raw = request.GET.get("branch", "").strip()
        chosen = next((b for b in branches if str(b.pk) == raw), None)
        rows = queries.pending_queue([self.library_id], branch=chosen.pk if chosen else None)
        page = Paginator(rows, PAGE).get_page(request.GET.get("page"))
        country = self.library.country if self.library is not None else ""
        context = self.context("Update requests") | {
            "page": page, "requests": [{"r": r, "rows": side_by_side(r, country)} for r in page], "branches": branches,
            "chosen": chosen, "filter_error": "Choose one of this library's branches." if raw and chosen is None else "",
        }  # fmt: skip
        return render(request, "staff/updates/queue.html", context)


class UpdateRequestView(_UpdatesView):
    reason_value = ""
    reason_errors: Mapping[str, list[str]] = {}

    def page(self, found: UpdateRequest, status: int = 200) -> HttpResponse:
        bound = fields.bind([REASON], {"reason": self.reason_value}, self.reason_errors)
        context = self.context(f"Update request {found.pk}") | {
            "req": found, "rows": side_by_side(found, found.library.country), "reason": bound[0],
            "errors": fields.error_summary(self.reason_errors, bound),
        }  # fmt: skip
        return render(self.request, "staff/updates/request.html", context, status=status)

    def get(self, request: HttpRequest, update_request_id: int) -> HttpResponse:
        self.enter()
        found = services.request_for_staff(self.actor, update_request_id)
        if found.library_id != self.library_id:
            raise NotFound("No such update request.")
        return self.page(found)


class UpdateRequestActionView(UpdateRequestView):
    http_method_names = ["post"]
    action = ""

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        found = getattr(self, "found", None)
        if found is None:
            return None

        def again(errors: Mapping[str, list[str]]) -> HttpResponse:
            self.reason_errors = errors
            return self.page(found, status=400)

        return again

    def back_url(self) -> str | None:
        found = getattr(self, "found", None)
        return reverse("staff:update-request", kwargs={"update_request_id": found.pk}) if found else None

    def post(self, request: HttpRequest, update_request_id: int) -> HttpResponse:
        self.enter()
        self.found = services.request_for_staff(self.actor, update_request_id)
        if self.found.library_id != self.library_id:
            raise NotFound("No such update request.")
        name = self.found.patron.display_name
        if self.action == "verify":
            services.verify(actor=self.actor, request=self.found)
            messages.success(request, f"The change is made and the verification block of {name} is lifted.")
        else:
            self.reason_value = request.POST.get("reason", "")[:2000]
            services.reject(actor=self.actor, request=self.found, reason=self.reason_value)
            messages.success(request, f"The change was rejected; {name} is told why, and the block is lifted.")
        return HttpResponseRedirect(reverse("staff:update-requests"))
