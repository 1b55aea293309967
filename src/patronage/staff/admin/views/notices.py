"""Reminder-notice settings and the e-mail outbox of the current library (Administration section)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import NotFound
from patronage.notices import services as notices
from patronage.outbox import services as outbox
from patronage.outbox.models import OutboxMessage

from ... import fields
from .base import AdminView, FormPage, read_post

PAGE_SIZE = 50

NOTICE_SETTINGS = (
    fields.FieldSpec(
        "almost_overdue_hours", "Almost-overdue reminder, hours before due", required=True,
        help="A whole number of hours, e.g. 24; 0 sends no almost-overdue reminders.",
    ),
    fields.FieldSpec(
        "expiration_days", "Record-expiration reminder, days before expiry", required=True,
        help="A whole number of days, e.g. 14; 0 sends no expiry reminders.",
    ),
    fields.FieldSpec(
        "inactive_days", "Inactive-patron notice after days without a checkout", required=True,
        help="A whole number of days, e.g. 365; 0 sends no inactive-patron notices.",
    ),
    fields.FieldSpec(
        "send_overdue", "Send overdue and invoice notices", kind="checkbox",
        help="Patrons cannot opt out of these.",
    ),
    fields.FieldSpec("may_opt_out_almost_overdue", "Patrons may opt out of almost-overdue reminders", kind="checkbox"),
    fields.FieldSpec(
        "may_opt_out_record_expiration", "Patrons may opt out of record-expiration reminders", kind="checkbox"
    ),
    fields.FieldSpec("may_opt_out_inactive", "Patrons may opt out of inactive-patron notices", kind="checkbox"),
)  # fmt: skip
STATES: fields.Choices = (("", "Every state"), *OutboxMessage.State.choices)


class NoticeSettingsView(FormPage):
    tab = "notices"

    def specs(self) -> tuple[fields.FieldSpec, ...]:
        return NOTICE_SETTINGS

    def page_context(self, values: Mapping[str, Any], errors: Mapping[str, list[str]]) -> dict[str, Any]:
        self.enter()
        return self.admin_context("Reminder notices") | {
            "intro": "When the reminder job e-mails almost-overdue, record-expiration and inactive-patron notices, "
            "and which of them patrons may opt out of. These settings apply to the whole library.",
            "action": reverse("staff:admin:notices"),
            "back_url": reverse("staff:admin:index"),
            "back_label": "administration",
            "submit": "Save notice settings",
        }

    def get(self, request: HttpRequest) -> HttpResponse:
        current = notices.settings_for(self.enter())
        return self.render_form({name: getattr(current, name) for name in notices.SETTING_FIELDS}, {})

    def post(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        self.posted = read_post(request, NOTICE_SETTINGS)
        notices.save_settings(actor=self.actor, library=library, data=self.posted)
        messages.success(request, "Notice settings saved.")
        return HttpResponseRedirect(reverse("staff:admin:notices"))


class OutboxListView(AdminView):
    tab = "outbox"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        state = request.GET.get("state", "")
        rows = OutboxMessage.objects.filter(library=library).order_by("-created_at", "-id")
        if state in OutboxMessage.State.values:
            rows = rows.filter(state=state)
        else:
            state = ""
        page = Paginator(rows.defer("text", "html", "headers"), PAGE_SIZE).get_page(request.GET.get("page"))
        context = self.admin_context("E-mail outbox") | {
            "page": page,
            "counts": outbox.counts(library),
            "state_field": fields.bind(
                [fields.FieldSpec("state", "Show", kind="select", choices=STATES)], {"state": state}
            )[0],
            "state": state,
            "zone": ZoneInfo(library.time_zone),
            "time_zone": library.time_zone,
        }
        return render(request, "staff/admin/outbox.html", context)


class OutboxRetryView(AdminView):
    tab = "outbox"

    def post(self, request: HttpRequest, message_id: int) -> HttpResponse:
        library = self.enter()
        message = OutboxMessage.objects.filter(library=library, pk=message_id).first()
        if message is None:
            raise NotFound("There is no such message in this library's outbox.")
        outbox.retry(actor=self.actor, message=message)
        messages.success(request, f"The message “{message.subject}” will be sent again shortly.")
        return HttpResponseRedirect(reverse("staff:admin:outbox") + "?state=failed")
