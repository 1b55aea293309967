"""Interlibrary loan across the library: who fails the checklist, grouped by cause, with the lists behind."""

from __future__ import annotations

from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from patronage.core import clock
from patronage.core.errors import FieldError
from patronage.libraries.permissions import Permission
from patronage.patrons import access
from patronage.resourcesharing import eligibility, overview

from .base import AdminView


class IllOverviewView(AdminView):
    permission = Permission.VIEW_PATRONS
    tab = "ill"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        patrons = access.patrons_for_staff(self.actor, Permission.VIEW_PATRONS, library_id=library.pk)
        groups = overview.groups(patrons, library, now=clock.now())
        list_url = reverse("staff:admin:ill-patrons")
        rows = [{"group": g, "url": f"{list_url}?{urlencode(g.query)}"} for g in groups]
        context = self.admin_context("Interlibrary loan") | {
            "rows": rows,
            "types": eligibility.authorised_types(library.pk),
            "can_configure": self.can(Permission.CONFIGURE_LIBRARY),
        }
        return render(request, "staff/admin/ill_overview.html", context)


class IllPatronListView(AdminView):
    """The patrons failing for one cause (optionally of one type), 50 a page, linked to their pages."""

    permission = Permission.VIEW_PATRONS
    tab = "ill"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        cause = request.GET.get("cause", "")
        if cause not in overview.CAUSES:
            raise FieldError("cause", "Choose a cause from the interlibrary-loan overview.")
        type_text = request.GET.get("type_id", "")
        type_id = int(type_text) if type_text.isdigit() and len(type_text) < 19 else None
        patrons = access.patrons_for_staff(self.actor, Permission.VIEW_PATRONS, library_id=library.pk)
        found = overview.matching(patrons, library, cause, type_id=type_id, now=clock.now())
        page = Paginator(found.select_related("patron_type").order_by("last_name", "first_name", "pk"), 50).get_page(
            request.GET.get("page")
        )
        context = self.admin_context(f"Patrons failing interlibrary loan: {overview.CAUSES[cause]}") | {
            "page": page,
            "cause_label": overview.CAUSES[cause],
            "query": urlencode({"cause": cause, **({"type_id": str(type_id)} if type_id else {})}),
        }
        return render(request, "staff/admin/ill_patrons.html", context)
