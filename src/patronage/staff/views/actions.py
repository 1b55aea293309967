"""Block, unblock, delete and download: the buttons of the Patron data tab."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.blocks import services as block_services
from patronage.core.errors import FieldError
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.privacy import export
from patronage.privacy import services as privacy_services

from .. import fields
from ..once import OnceOnly
from .detail import PatronFormView, PatronPageView


def parse_end(text: str, time_zone: str) -> dt.datetime | None:
    """A block's end typed as a local date and time of the library."""
    text = text.strip()
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise FieldError("ends_at", "Enter the end as a date and time, e.g. 2030-06-30 17:00.") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(time_zone))
    return value


class _CommentFormView(PatronFormView):
    """A page with a comment form about one patron (block, unblock)."""

    specs: tuple[fields.FieldSpec, ...] = ()
    template = ""

    def _page(
        self, patron: Patron, values: Mapping[str, Any], errors: Mapping[str, list[str]], status: int = 200
    ) -> HttpResponse:
        bound = fields.bind(self.specs, values, errors)
        context = self.patron_context(patron, "data") | {"fields": bound, "errors": fields.error_summary(errors, bound)}
        return render(self.request, self.template, context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.BLOCK_PATRON, read=True)
        return self._page(patron, {}, {})


class BlockView(OnceOnly, _CommentFormView):
    specs = fields.BLOCK
    template = "staff/patron/block.html"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.BLOCK_PATRON)
        self.posted = {s.name: request.POST.get(s.name, "") for s in self.specs}
        ends_at = parse_end(self.posted["ends_at"], patron.library.time_zone)
        block_services.block_patron(actor=self.actor, patron=patron, comment=self.posted["comment"], ends_at=ends_at)
        messages.success(request, f"{patron.display_name} is blocked at {patron.library.name}.")
        return self.done_once(reverse("staff:patron-detail", kwargs={"pk": patron.pk}))


class UnblockView(_CommentFormView):
    specs = fields.UNBLOCK
    template = "staff/patron/unblock.html"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.BLOCK_PATRON)
        self.posted = {s.name: request.POST.get(s.name, "") for s in self.specs}
        block_services.unblock_patron(actor=self.actor, patron=patron, comment=self.posted["comment"])
        messages.success(request, f"{patron.display_name} is no longer blocked at {patron.library.name}.")
        return HttpResponseRedirect(reverse("staff:patron-detail", kwargs={"pk": patron.pk}))


class DeleteView(PatronPageView):
    """Two steps: the first page lists what stands in the way or asks to confirm; the second deletes."""

    def _page(self, patron: Patron, reasons: list[str], status: int = 200) -> HttpResponse:
        context = self.patron_context(patron, "data") | {"reasons": reasons}
        return render(self.request, "staff/patron/delete.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.DELETE_PATRON, read=True)
        return self._page(patron, [o.message for o in privacy_services.deletion_obstacles(patron)])

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.DELETE_PATRON)
        if request.POST.get("confirm") != "yes":
            return self._page(patron, [o.message for o in privacy_services.deletion_obstacles(patron)])
        name, library = patron.display_name, patron.library.name
        try:
            privacy_services.delete_patron(actor=self.actor, patron=patron)
        except privacy_services.DeletionRefused as exc:
            return self._page(patron, [r["message"] for r in exc.reasons], status=409)
        messages.success(request, f"{name} was deleted from {library}. Accounts at other libraries are kept.")
        return HttpResponseRedirect(reverse("staff:patron-list"))


class DownloadView(PatronPageView):
    # POST only: the download is an audited disclosure, so a link preview or prefetch must not cause one.
    http_method_names = ["post"]

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(Permission.DOWNLOAD_PATRON_DATA)
        filename, content = export.export_archive(actor=self.actor, patron=patron)
        response = HttpResponse(content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        return response
