"""The Patrons section: search, list and the New patron form."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from patronage.core import clock
from patronage.core.errors import FieldError, NotFound
from patronage.libraries.models import Branch
from patronage.libraries.permissions import Permission
from patronage.patrons import access
from patronage.patrons import services as patron_services
from patronage.patrons.models import Barcode, PatronType
from patronage.patrons.queries import DEFAULT_SORT, SORTS, search_patrons

from .. import fields, listing
from ..auth import StaffView
from ..once import OnceOnly

PAGE_SIZE = 25
# The columns a user can sort by, with the allow-listed sort keys they switch between.
SORTABLE_COLUMNS = {"name": "name", "expiry": "expires_on"}


def reference_choices(library_id: int) -> dict[str, fields.Choices]:
    """The patron types and branches of the current library, for select boxes."""
    types = PatronType.objects.filter(library_id=library_id).order_by("name").values_list("pk", "name")
    branches = Branch.objects.filter(library_id=library_id).order_by("name").values_list("pk", "name")
    return {
        "patron_type": (("", "Choose a patron type"), *((str(pk), name) for pk, name in types)),
        "registered_branch": (("", "Choose a branch"), *((str(pk), name) for pk, name in branches)),
    }


class PatronListView(StaffView):
    def get(self, request: HttpRequest) -> HttpResponse:
        self.require(Permission.VIEW_PATRONS)
        query = request.GET.get("q", "").strip()
        sort = request.GET.get("sort", DEFAULT_SORT) or DEFAULT_SORT
        region = self.library.country if self.library else "US"
        scope = access.patrons_for_staff(self.actor, Permission.VIEW_PATRONS, library_id=self.library_id)
        sort_error = ""
        try:
            patrons = search_patrons(scope, query, region=region, sort=sort)
        except FieldError as exc:
            sort_error = f"The list cannot be sorted by {sort[:40]!r}. {exc.message} It is sorted by name instead."
            sort = DEFAULT_SORT
            patrons = search_patrons(scope, query, region=region, sort=sort)
        now = clock.now()
        patrons = listing.with_standing_facts(patrons, now).prefetch_related(
            Prefetch("barcodes", queryset=Barcode.objects.filter(is_active=True), to_attr="active_barcodes")
        )
        page = Paginator(patrons, PAGE_SIZE).get_page(request.GET.get("page"))
        rows = [
            {
                "patron": patron,
                "barcode": next((b.number for b in getattr(patron, "active_barcodes", [])), ""),
                "standing": listing.summary(patron, now),
            }
            for patron in page
        ]
        columns = []
        for column, key in SORTABLE_COLUMNS.items():
            ascending = sort == key
            descending = sort == f"-{key}"
            columns.append(
                {
                    "key": column,
                    "next_sort": f"-{key}" if ascending else key,
                    "aria_sort": "ascending" if ascending else "descending" if descending else "",
                }
            )
        context = self.base_context() | {
            "section": "patrons",
            "query": query,
            "sort": sort,
            "sorts": list(SORTS),
            "sort_error": sort_error,
            "page": page,
            "rows": rows,
            "columns": {c["key"]: c for c in columns},
            "can_create": self.can(Permission.EDIT_PATRON),
        }
        return render(request, "staff/patron_list.html", context, status=400 if sort_error else 200)


class PatronCreateView(OnceOnly, StaffView):
    posted: dict[str, str] | None = None

    def _page(self, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200) -> HttpResponse:
        bound = fields.bind(fields.NEW_PATRON, values, errors, choices=reference_choices(self.library_id))
        context = self.base_context() | {
            "section": "patrons",
            "fields": bound,
            "errors": fields.error_summary(errors, bound),
        }
        return render(self.request, "staff/patron_new.html", context, status=status)

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        posted = self.posted
        if posted is None:
            return None
        return lambda errors: self._page(posted, errors, status=400)

    def get(self, request: HttpRequest) -> HttpResponse:
        self.require(Permission.EDIT_PATRON)
        return self._page({}, {})

    def post(self, request: HttpRequest) -> HttpResponse:
        self.require(Permission.EDIT_PATRON)
        if self.library is None:  # require() already refuses a user without a library; this informs the type checker
            raise NotFound("You are not a member of any library.")
        self.posted = {spec.name: request.POST.get(spec.name, "") for spec in fields.NEW_PATRON}
        # Fields left empty are left out, so the service applies its defaults (e.g. the expiry from the type).
        data = {k: v for k, v in self.posted.items() if k not in {"barcode", "phone_mobile"} and v.strip()}
        patron = patron_services.create_patron(
            actor=self.actor,
            library=self.library,
            data=data,
            barcode=self.posted["barcode"].strip() or None,
            phones={"mobile": self.posted["phone_mobile"]},
        )
        messages.success(request, f"Patron {patron.display_name} was created.")
        return self.done_once(reverse("staff:patron-detail", kwargs={"pk": patron.pk}))
