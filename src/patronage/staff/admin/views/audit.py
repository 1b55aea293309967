"""The audit log of the current library: newest first, filtered by action, staff member, patron and dates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from patronage.core.models import AuditEvent
from patronage.libraries.permissions import Permission

from ... import fields
from .. import specs
from .base import AdminView

PAGE_SIZE = 50


def _date(text: str, field: str, errors: dict[str, list[str]]) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        errors[field] = ["Enter a date as year-month-day, e.g. 2026-11-24."]
        return None


def filter_events(
    events: QuerySet[AuditEvent], values: Mapping[str, str], time_zone: str
) -> tuple[QuerySet[AuditEvent], dict[str, list[str]]]:
    """Apply the filters typed into the form; returns the events and the errors of bad filters."""
    errors: dict[str, list[str]] = {}
    action = values.get("action", "")
    if len(action) > 64:
        errors["action"] = ["An action name has at most 64 characters."]
    elif action.endswith("."):
        events = events.filter(action__startswith=action)
    elif action:
        events = events.filter(action=action)
    actor = values.get("actor", "")
    if actor:
        events = events.filter(actor_label__iexact=actor[:150])
    patron = values.get("patron", "")
    if patron:
        if not patron.isdigit() or len(patron) > 18:
            errors["patron"] = ["Enter the patron's number only, e.g. 1234."]
        else:
            events = events.filter(patron_id=int(patron))
    zone = ZoneInfo(time_zone)
    start = _date(values.get("date_from", ""), "date_from", errors)
    end = _date(values.get("date_to", ""), "date_to", errors)
    if start and end and end < start:
        errors["date_to"] = ["The end date lies before the start date; swap them or change one."]
    if start:
        events = events.filter(at__gte=dt.datetime.combine(start, dt.time.min, zone))
    if end:
        events = events.filter(at__lt=dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, zone))
    return events, errors


class AuditLogView(AdminView):
    permission = Permission.VIEW_AUDIT_LOG
    section = "audit"
    tab = "audit"

    def get(self, request: HttpRequest) -> HttpResponse:
        library = self.enter()
        values = {spec.name: request.GET.get(spec.name, "").strip() for spec in specs.AUDIT_FILTERS}
        events = AuditEvent.objects.filter(library_id=library.pk).order_by("-at", "-id")
        events, errors = filter_events(events, values, library.time_zone)
        page = None if errors else Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
        bound = fields.bind(specs.AUDIT_FILTERS, values, errors)
        context: dict[str, Any] = self.admin_context("Audit log") | {
            "fields": bound,
            "errors": fields.error_summary(errors, bound),
            "page": page,
            "filtered": any(values.values()),
            "time_zone": library.time_zone,
        }
        return render(request, "staff/admin/audit_log.html", context, status=400 if errors else 200)
