"""Safe retries for the API's creating and acting requests: the ``Idempotency-Key`` header.

A client that sends ``Idempotency-Key: <key>`` with a POST marked ``@idempotent`` gets, for the same key
and the same request (method, path and body), the first answer again: same status, same body, plus the
header ``Idempotent-Replayed: true``; the action runs once. The same key with another request is a
``409 idempotency_key_reused``. Without the header a request runs as it always did.

How it stays right under retries and races: the key's row is inserted at the start of the request's
transaction and filled in with the answer at its end, in the same transaction as the action. So the row
is committed exactly when the action is (or, for a 4xx answer, with nothing else). A second request with
the same key waits on that row: PostgreSQL blocks the insert on the unique index until the first
transaction ends; SQLite's IMMEDIATE transactions queue at BEGIN. It then finds the stored answer and
replays it. A 5xx answer or an unexpected error rolls the row back with everything else, so a retry runs
the action afresh; so do 401, 403, 404 and 429, which answer before the action is tried. Keys are per
user (a token acts as its user) and live ``LIFETIME``; older ones are ignored and purged by
``purge_expired`` (a periodic task queued by the worker's clock).

Payments keep their own key in the debt ledger (``fines.services.take_payment``): that endpoint is not
wrapped here, and its key is required, stored with the payment and kept for good.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import IntegrityError, transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import APIView

from patronage.core import clock
from patronage.core.errors import Conflict, FieldError

from .models import IdempotencyKey

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
MAX_LENGTH = 255
LIFETIME = dt.timedelta(hours=24)
# Answers given before the action was tried (who may do it, what it is about, slow down) are not kept:
# a retry once the permission is granted, or after the pause, runs the action.
NOT_KEPT = frozenset({401, 403, 404, 429})

PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Optional; 1-255 printable ASCII characters, e.g. a UUID, new for each intended action. Retrying with "
        "the same key and the same request returns the first answer again (with `Idempotent-Replayed: true`) "
        "without repeating the action; the same key with another request is a 409 `idempotency_key_reused`. "
        "Keys are kept 24 hours, per user."
    ),
)

View = TypeVar("View", bound=APIView)
Handler = Callable[..., Response]


def valid_key(raw: str) -> str:
    """The header's value if it is 1-255 printable ASCII characters; otherwise a field error on the header."""
    if not raw or len(raw) > MAX_LENGTH or any(not (" " <= ch <= "~") for ch in raw) or not raw.strip():
        raise FieldError(
            HEADER,
            f"Send 1-{MAX_LENGTH} printable ASCII characters (letters, digits, punctuation), e.g. a UUID; "
            "or leave the header out.",
        )
    return raw


def fingerprint(request: Request) -> str:
    """SHA-256 of the method, the path with its query and the body as canonical JSON (key order and spacing
    do not matter)."""
    body = json.dumps(request.data, cls=JSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    text = "\n".join((request.method or "", request.get_full_path(), body))
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(found: IdempotencyKey, print_: str) -> Response:
    if found.fingerprint != print_:
        raise Conflict(
            f"This Idempotency-Key was already used for another request ({found.method} {found.path[:200]}); "
            "send a new key for a new request.",
            code="idempotency_key_reused",
        )
    data = json.loads(found.response_body) if found.response_body else None
    headers = {REPLAYED: "true"}
    if found.location:
        headers["Location"] = found.location
    return Response(data, status=found.status, headers=headers, content_type=found.content_type or None)


def _store(row: IdempotencyKey, response: Response) -> None:
    data = response.data
    row.status = response.status_code
    row.response_body = "" if data is None else json.dumps(data, cls=JSONEncoder, ensure_ascii=False)
    row.content_type = response.content_type or ""
    row.location = str(response.headers.get("Location", ""))[:500]
    row.save(update_fields=["status", "response_body", "content_type", "location"])


def _user_id(request: Request) -> int:
    """Keys are per user; the API's permission classes have refused anonymous callers already."""
    pk = request.user.pk
    if pk is None:
        raise NotAuthenticated()
    return int(pk)


def _run(view: APIView, handler: Handler, request: Request, args: Any, kwargs: Any) -> Response:
    key = valid_key(request.headers[HEADER])
    print_ = fingerprint(request)
    user_id = _user_id(request)
    with transaction.atomic():
        now = clock.now()
        IdempotencyKey.objects.filter(user_id=user_id, key=key, created_at__lt=now - LIFETIME).delete()
        try:
            with transaction.atomic():
                row = IdempotencyKey.objects.create(
                    user_id=user_id, key=key, method=request.method or "", path=request.get_full_path()[:500],
                    fingerprint=print_, created_at=now,
                )  # fmt: skip
        except IntegrityError:
            # Another request with this key committed while we waited for its row: answer as it did.
            return _replay(IdempotencyKey.objects.get(user_id=user_id, key=key), print_)
        try:
            with transaction.atomic():
                response = handler(view, request, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - DRF turns it into the answer, or raises it again (a 5xx)
            response = view.handle_exception(exc)
        if response.status_code >= 500 or response.status_code in NOT_KEPT:
            transaction.set_rollback(True)
            return response
        _store(row, response)
        return response


def idempotent(handler: Handler) -> Handler:
    """Make an APIView's POST handler honour ``Idempotency-Key`` (and declare the header in the schema).

    Put it above ``@extend_schema``. Decorate the handler that is routed, once: not a base class's too.
    """

    @functools.wraps(handler)
    def wrapper(view: APIView, request: Request, *args: Any, **kwargs: Any) -> Response:
        if request.headers.get(HEADER) is None:
            return handler(view, request, *args, **kwargs)
        existing = IdempotencyKey.objects.filter(user_id=_user_id(request), key=request.headers[HEADER]).first()
        if existing is not None and existing.created_at >= clock.now() - LIFETIME:
            valid_key(request.headers[HEADER])
            return _replay(existing, fingerprint(request))
        return _run(view, handler, request, args, kwargs)

    marked: Handler = extend_schema(parameters=[PARAMETER])(wrapper)
    return marked


def purge_expired(now: dt.datetime | None = None) -> int:
    """Delete the keys older than ``LIFETIME``; returns how many."""
    cutoff = (now or clock.now()) - LIFETIME
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
