"""``POST /ncip/``: the NCIP 2.0 responder for resource-sharing systems (ReShare).

The caller is a protocol client with NCIP allowed (Administration, Protocol clients), authenticated by
HTTP Basic (its login and secret), ``Authorization: Bearer <secret>``, or the secret as
``FromAgencyAuthentication`` in the InitiationHeader; it must call from one of its allowed addresses. The
client's library is the one answered for, so the URL names no library.

Answers: HTTP 200 with the service's response, or its ``Problem``, for everything the message itself gets
wrong (NCIP clients treat any 4xx/5xx as a transport failure); 401/429 (with a Problem body) when the client
is not recognised or is locked out; 413 for a body over ``MAX_BODY``; 405 for anything but POST. No request
ends in a 500: an unexpected error is logged and answered as a Temporary Processing Failure, and a domain
refusal (``DomainError``) that a service did not turn into its own Problem is answered as the closest
standard Problem (``services.problem_for_error``).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from patronage.core import net
from patronage.core.errors import DomainError
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import Protocol, ProtocolClient

from . import services
from .messages import GENERAL, NcipProblem, parse, syntax_problem, top_level_problem

MAX_BODY = 256 * 1024
CONTENT_TYPE = "application/xml; charset=UTF-8"
# No answer is a page: nothing in it may load, run or be framed. Set here: the full site's CSP middleware
# leaves a policy already set alone, and the NCIP pool (``patronage.ncip.wsgi``) runs without that middleware,
# so both send this one.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
log = logging.getLogger("patronage.ncip")


def _xml(body: bytes, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response


def _problem(p: NcipProblem, status: int = 200) -> HttpResponse:
    return _xml(top_level_problem(p), status)


def _refused(detail: str, status: int = 401, retry_after: int | None = None) -> HttpResponse:
    response = _problem(NcipProblem("Agency Authentication Failed", detail, scheme=GENERAL, top_level=True), status)
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="patronage-ncip"'
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def _unavailable() -> HttpResponse:
    return _problem(NcipProblem("Temporary Processing Failure", "Try again in a moment.", top_level=True))


@csrf_exempt
def endpoint(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = _problem(
            NcipProblem("Protocol Error", "POST one NCIPMessage document to this address.", top_level=True), 405
        )
        response["Allow"] = "POST"
        return response
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY:
        return _problem(syntax_problem(f"The body is larger than {MAX_BODY // 1024} KiB."), 413)
    body = request.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        return _problem(syntax_problem(f"The body is larger than {MAX_BODY // 1024} KiB."), 413)
    address = net.client_ip(request.META)
    try:
        given = clients.credentials_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
    except clients.MalformedCredentials as exc:
        return _refused(str(exc))
    try:
        parsed = parse(body)
    except NcipProblem as exc:
        log.info("NCIP request refused unread from %s: %s", address, exc.problem_type)  # never the body (PINs)
        return _problem(exc)
    if given is None:
        secret = parsed.header.agency_authentication if parsed.header is not None else ""
        if not secret:
            return _refused("Sign in as a protocol client: HTTP Basic with its login and secret.")
        given = ("", secret)
    try:
        client: ProtocolClient = clients.authenticate_client(
            Protocol.NCIP, given[0], given[1], address, audit_success=parsed.service not in services.RECORDS_OWN_SIGN_IN
        )
    except clients.ClientLocked as exc:
        return _refused(exc.message, 429, exc.retry_after_seconds)
    except clients.ClientAuthenticationFailed as exc:
        return _refused(exc.message)
    except DatabaseError:  # e.g. a connection the database dropped; the next request gets a fresh one
        log.exception("NCIP %s: the client could not be signed in", parsed.service)
        return _unavailable()
    try:
        return _xml(services.answer(client, parsed, address))
    except NcipProblem as exc:
        return _problem(exc)
    except DomainError as exc:  # the code and class only: never the body, nor the message (it may echo values)
        log.warning("NCIP %s refused for client %s: %s %s", parsed.service, client.pk, type(exc).__name__, exc.code)
        return _problem(services.problem_for_error(exc))
    except DatabaseError:
        log.exception("NCIP %s failed for client %s", parsed.service, client.pk)
        return _unavailable()
