"""Turning domain errors into staff pages, in one place.

Views raise or let through the errors of ``patronage.core.errors``; ``StaffView.dispatch`` hands them
here. A view that shows a form defines ``invalid(errors)`` to re-render it with the field errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render

from patronage.core.errors import (
    Conflict,
    DomainError,
    FieldError,
    NotFound,
    PermissionDenied,
    Refused,
    ValidationFailed,
)

InvalidHandler = Callable[[Mapping[str, list[str]]], HttpResponse]


def error_page(
    request: HttpRequest,
    *,
    status: int,
    title: str,
    message: str,
    context: Mapping[str, Any] | None = None,
    reasons: list[str] | None = None,
) -> HttpResponse:
    page = {**(context or {}), "title": title, "message": message, "reasons": reasons or []}
    return render(request, "staff/error.html", page, status=status)


def handle_domain_error(
    request: HttpRequest,
    exc: DomainError,
    *,
    context: Mapping[str, Any] | None = None,
    invalid: InvalidHandler | None = None,
    back_url: str | None = None,
) -> HttpResponse:
    if isinstance(exc, NotFound):
        return error_page(request, status=404, title="Not found", message=exc.message, context=context)
    if isinstance(exc, PermissionDenied):
        return error_page(request, status=403, title="Not allowed", message=exc.message, context=context)
    if isinstance(exc, FieldError | ValidationFailed):
        if invalid is not None:
            return invalid(exc.errors)
        lines = [f"{field}: {m}" for field, msgs in exc.errors.items() for m in msgs]
        return error_page(
            request, status=400, title="Please correct the input", message=exc.message, context=context, reasons=lines
        )
    if isinstance(exc, Refused):
        reasons = [r.get("message", r.get("code", "")) for r in exc.reasons]
        return error_page(request, status=409, title="Refused", message=exc.message, context=context, reasons=reasons)
    if isinstance(exc, Conflict) and back_url:
        # A conflict is about the current state (already blocked, key reused): say so where the user was.
        messages.error(request, exc.message)
        return HttpResponseRedirect(back_url)
    return error_page(request, status=exc.status, title="Could not do that", message=exc.message, context=context)
