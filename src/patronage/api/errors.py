"""Every API error as an RFC 9457 problem document (``application/problem+json``).

The body always has ``type``, ``title``, ``status``, ``detail`` and a stable ``code``; field errors add
``errors`` ({field: [messages]}) and refusals by a rule add ``reasons`` ([{code, message}]).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from patronage.core.errors import DomainError, FieldError, Refused, ValidationFailed

PROBLEM_TYPE = "https://patronage.invalid/problems/"
_TITLES = {
    400: "The request needs correcting",
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    415: "Unsupported media type",
    429: "Too many requests",
}


class ProblemResponse(Response):
    def __init__(self, data: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(data, status=status, headers=headers, content_type="application/problem+json")


def problem(status_code: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + code,
        "title": _TITLES.get(status_code, "Error"),
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return body


def _from_domain(exc: DomainError) -> ProblemResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, FieldError | ValidationFailed):
        extra["errors"] = exc.errors
    if isinstance(exc, Refused):
        extra["reasons"] = exc.reasons
    return ProblemResponse(problem(exc.status, exc.code, exc.message, **extra), status=exc.status)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error details as {"field" or "field.sub": [messages]}."""
    if isinstance(detail, dict):
        out: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, "" if name == "non_field_errors" else name))
        return out
    if isinstance(detail, list) and detail and all(not isinstance(d, dict | list) for d in detail):
        return {prefix or "request": [str(d) for d in detail]}
    if isinstance(detail, list):
        out = {}
        for index, value in enumerate(detail):
            out.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix or "request": [str(detail)]}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return _from_domain(exc)
    if isinstance(exc, Http404):
        return ProblemResponse(problem(404, "not_found", "No such resource."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response
    code = exc.get_codes() if not isinstance(exc.detail, dict | list) else None
    if isinstance(exc, exceptions.ValidationError):
        errors = _flatten(exc.detail)
        first = next(iter(errors.items()))
        body = problem(400, "invalid", f"{first[0]}: {first[1][0]}", errors=errors)
    else:
        body = problem(response.status_code, str(code or "error"), str(exc.detail))
    headers = {k: v for k, v in response.headers.items() if k in {"WWW-Authenticate", "Retry-After", "Allow"}}
    return ProblemResponse(body, status=response.status_code or status.HTTP_400_BAD_REQUEST, headers=headers)
