"""The NCIP services Patronage answers, each turned into a call of a domain service and back into XML.

LookupUser asks ``resourcesharing.eligibility`` (the interlibrary-loan checklist, the same answer as the
REST endpoint and the staff page); AcceptItem, CheckOutItem, CheckInItem and CancelRequestItem go to
``resourcesharing.ill_items``. No rule lives here: this module reads elements and writes elements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from xml.etree import ElementTree as ET  # only for building our own output; requests go through defusedxml

from dateutil import parser as date_parser

from patronage.core.errors import DomainError, FieldError, ValidationFailed
from patronage.credentials import services as credentials
from patronage.patrons.models import Patron
from patronage.resourcesharing import clients, eligibility, ill_items
from patronage.resourcesharing.models import Protocol, ProtocolClient

from .messages import (
    ACCEPT,
    CHECK_IN,
    CHECK_OUT,
    GENERAL,
    LOOKUP_USER,
    NcipProblem,
    Request,
    identifier,
    message,
    problem,
    response_header,
    serialise,
    sub,
)
from .messages import date_time as xml_date_time

ACTIVE, BLOCKED, EXPIRED = "ACTIVE", "BLOCKED", "EXPIRED"
_BARCODE_TYPES = {"barcode", "barcode id", "barcodeid", "user barcode"}
_USER_ID_TYPES = {"user id", "userid", "username", "ldapusername", "person-id", "person id", "institution id"}
_PIN_TYPES = {"pin", "password", "ldappassword", "patron pin"}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def our_agency(client: ProtocolClient, request: Request) -> str:
    """How we name ourselves: the ToAgencyId the requester uses for us, else the library's code."""
    if request.header is not None and request.header.to_agency:
        return request.header.to_agency
    return client.library.code.upper()


def _user_identifier(request: Request) -> tuple[str, eligibility.IdentifierType, str | None]:
    """(identifier, kind, PIN or None) from UserId or AuthenticationInput; Needed Data Missing if neither."""
    value = request.text("UserId", "UserIdentifierValue")[:64]
    kind = eligibility.IdentifierType.ANY
    given_type = _norm(request.text("UserId", "UserIdentifierType"))
    if given_type in _BARCODE_TYPES:
        kind = eligibility.IdentifierType.BARCODE
    pin: str | None = None
    for node in request.children("AuthenticationInput"):
        data = next((c for c in node if c.tag.rsplit("}", 1)[-1] == "AuthenticationInputData"), None)
        kind_node = next((c for c in node if c.tag.rsplit("}", 1)[-1] == "AuthenticationInputType"), None)
        text = (data.text or "") if data is not None else ""
        input_type = _norm(kind_node.text or "") if kind_node is not None else ""
        if input_type in _PIN_TYPES:
            pin = text[:256]
        elif input_type in _BARCODE_TYPES and not value:
            value, kind = text.strip()[:64], eligibility.IdentifierType.BARCODE
        elif input_type in _USER_ID_TYPES and not value:
            value = text.strip()[:64]
    if not value:
        raise NcipProblem(
            "Needed Data Missing", "Send the patron's UserId, or an AuthenticationInput with a barcode or user id.",
            element="UserIdentifierValue",
        )  # fmt: skip
    return value, kind, pin


def _status_label(result: eligibility.Result) -> str:
    if result.eligible:
        return ACTIVE
    return EXPIRED if result.codes == ["record_expired"] else BLOCKED


def _privilege(parent: ET.Element, agency: str, kind: str, status: str, description: str) -> None:
    node = sub(parent, "UserPrivilege")
    sub(node, "AgencyId", agency)
    sub(node, "AgencyUserPrivilegeType", kind)
    sub(sub(node, "UserPrivilegeStatus"), "UserPrivilegeStatusType", status)
    if description:
        sub(node, "UserPrivilegeDescription", description)


def _electronic_address(parent: ET.Element, kind: str, value: str) -> None:
    node = sub(parent, "UserAddressInformation")
    sub(node, "UserAddressRoleType", "OTH")
    address = sub(node, "ElectronicAddress")
    sub(address, "ElectronicAddressType", kind)
    sub(address, "ElectronicAddressData", value)


def _optional_fields(parent: ET.Element, patron: Patron, result: eligibility.Result, agency: str,
                     wanted: set[str]) -> None:  # fmt: skip
    fields = sub(parent, "UserOptionalFields")
    if "name information" in wanted:
        names = sub(sub(fields, "NameInformation"), "PersonalNameInformation")
        structured = sub(names, "StructuredPersonalUserName")
        if patron.first_name:
            sub(structured, "GivenName", patron.first_name)
        sub(structured, "Surname", patron.last_name or patron.first_name or "-")
        sub(names, "UnstructuredPersonalUserName", f"{patron.first_name} {patron.last_name}".strip())
    if "user address information" in wanted:
        if patron.primary_email:
            _electronic_address(fields, "mailto", patron.primary_email)
        if result.phone:  # read with the patron (mobile first), asked for below when this element is wanted
            _electronic_address(fields, "tel", result.phone)
    codes = [] if result.eligible else result.codes
    _privilege(fields, agency, "PROFILE", patron.patron_type.code.upper(), patron.patron_type.name[:100])
    _privilege(fields, agency, "STATUS", _status_label(result), "; ".join(codes) or "eligible for interlibrary loan")
    if "block or trap" in wanted:
        for code in codes:
            node = sub(fields, "BlockOrTrap")
            sub(node, "AgencyId", agency)
            sub(node, "BlockOrTrapType", code)


# The services whose handler records the client's sign-in itself (``clients.authenticate_client`` with
# ``audit_success=False``): LookupUser's read event names the client, the channel and the address, so a
# second event per request for the sign-in would say nothing more; where no read is recorded (no
# identifier, a wrong PIN, the directory down, a failure) the handler writes the sign-in event instead.
RECORDS_OWN_SIGN_IN = frozenset({"LookupUser"})


def lookup_user(client: ProtocolClient, request: Request, address: str | None) -> ET.Element:
    read_recorded = False
    try:
        value, kind, pin = _user_identifier(request)
        wanted = {_norm(t) for t in request.texts("UserElementType")}
        result, _ = eligibility.validate(
            client=client, identifier=value, kind=kind, pin=pin, address=address, channel=ill_items.CHANNEL,
            with_phone="user address information" in wanted,
        )  # fmt: skip
        read_recorded = True
    except eligibility.PatronAuthenticationFailed:
        raise NcipProblem(
            "User Authentication Failed", "The patron's identifier or PIN/password is not right.",
            element="AuthenticationInputData", scheme=LOOKUP_USER,
        ) from None  # fmt: skip
    except credentials.SignInLocked as exc:
        raise NcipProblem(
            "User Authentication Failed", f"Too many wrong PINs; try again in {exc.retry_after_seconds} seconds.",
            element="AuthenticationInputData", scheme=LOOKUP_USER,
        ) from None  # fmt: skip
    except credentials.DirectoryUnavailable:
        raise NcipProblem("Temporary Processing Failure", credentials.DIRECTORY_DOWN) from None
    finally:
        if not read_recorded:
            clients.record_sign_in(client, Protocol.NCIP, address)
    patron = result.patron
    if patron is None:
        raise NcipProblem(
            "Unknown User", "No patron of this library has this identifier.",
            element="UserIdentifierValue", value=value, scheme=LOOKUP_USER,
        )  # fmt: skip
    agency = our_agency(client, request)
    body = ET.Element("LookupUserResponse")
    identifier(body, "User", agency, value, "Barcode" if result.matched_by == "barcode" else "User Id")
    _optional_fields(body, patron, result, agency, wanted)
    return body


# --- interlibrary-loan items ---------------------------------------------------------------------

_PROBLEMS: dict[str, tuple[str, str, str]] = {
    # refusal code -> (problem type, scheme, element)
    "needed_data_missing": ("Needed Data Missing", GENERAL, "RequestIdentifierValue"),
    "ill_not_configured": ("Cannot Accept Item", ACCEPT, ""),
    "invalid_item_id": ("Element Rule Violated", ACCEPT, "ItemIdentifierValue"),
    "item_id_taken": ("Cannot Accept Item", ACCEPT, "ItemIdentifierValue"),
    "cannot_accept": ("Cannot Accept Item", ACCEPT, ""),
    "unknown_user": ("Unknown User", CHECK_OUT, "UserIdentifierValue"),
    "unknown_item": ("Unknown Item", CHECK_OUT, "ItemIdentifierValue"),
    "wrong_user": ("User Ineligible To Check Out This Item", CHECK_OUT, "UserIdentifierValue"),
    "item_not_available": ("Resource Cannot Be Provided", CHECK_OUT, "ItemIdentifierValue"),
    "user_blocked": ("User Blocked", CHECK_OUT, "UserIdentifierValue"),
    "cannot_check_out": ("Resource Cannot Be Provided", CHECK_OUT, "ItemIdentifierValue"),
    "unknown_request": ("Unknown Request", ACCEPT, "RequestIdentifierValue"),
    "cannot_cancel": ("Element Rule Violated", GENERAL, "RequestIdentifierValue"),
}


def _problem_for(exc: ill_items.IllRefused, *, scheme: str | None = None) -> NcipProblem:
    kind, default_scheme, element = _PROBLEMS.get(exc.code, ("Temporary Processing Failure", GENERAL, ""))
    if exc.code == "unknown_item" and scheme == CHECK_IN:
        default_scheme = CHECK_IN
    if exc.code == "unknown_user" and scheme == ACCEPT:
        default_scheme = ACCEPT
    detail = exc.message + (f" Reasons: {'; '.join(exc.reasons)}." if exc.reasons else "")
    return NcipProblem(kind, detail, element=element, value=exc.value, scheme=default_scheme)


def problem_for_error(exc: DomainError) -> NcipProblem:
    """The NCIP Problem for a domain refusal that escaped a service: the service's own mapping for an
    interlibrary-loan refusal, Element Rule Violated for input a rule rejects, else a Temporary Processing
    Failure (the state it met may have changed by the next try). The detail is the error's message, written
    for callers, and its stable code."""
    if isinstance(exc, ill_items.IllRefused):
        return _problem_for(exc)
    kind = (
        "Element Rule Violated" if isinstance(exc, (FieldError, ValidationFailed)) else "Temporary Processing Failure"
    )
    return NcipProblem(kind, f"{exc.message} ({exc.code})", top_level=True)


def _date(text: str) -> dt.datetime | None:
    if not text:
        return None
    try:
        value = date_parser.isoparse(text)
    except (ValueError, OverflowError):
        raise NcipProblem("Invalid Date", f"{text[:40]!r} is not a date and time (e.g. 2026-12-31T23:59:00Z).",
                          element="DateForReturn", value=text[:40]) from None  # fmt: skip
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def accept_item(client: ProtocolClient, request: Request, address: str | None) -> ET.Element:
    request_agency = request.text("RequestId", "AgencyId")
    request_value = request.text("RequestId", "RequestIdentifierValue")
    user_id = request.text("UserId", "UserIdentifierValue")
    if not user_id:
        raise NcipProblem("Needed Data Missing", "Send the UserId of the patron the item is for.",
                          element="UserIdentifierValue", scheme=GENERAL)  # fmt: skip
    try:
        item, _ = ill_items.accept_item(
            client, request_agency=request_agency, request_id=request_value,
            item_id=request.text("ItemId", "ItemIdentifierValue"), user_id=user_id,
            title=request.text("ItemOptionalFields", "BibliographicDescription", "Title"),
            date_due=_date(request.text("DateForReturn")), address=address,
        )  # fmt: skip
    except ill_items.IllRefused as exc:
        raise _problem_for(exc, scheme=ACCEPT) from None
    body = ET.Element("AcceptItemResponse")
    identifier(body, "Request", item.request_agency, item.request_id)
    identifier(body, "Item", our_agency(client, request), item.resource.identifier)
    return body


def check_out_item(client: ProtocolClient, request: Request, address: str | None) -> ET.Element:
    item_id = request.text("ItemId", "ItemIdentifierValue")
    if not item_id:
        raise NcipProblem("Needed Data Missing", "Send the ItemId of the item to check out.",
                          element="ItemIdentifierValue")  # fmt: skip
    user_id = request.text("UserId", "UserIdentifierValue")
    if not user_id and request.children("AuthenticationInput"):
        user_id = _user_identifier(request)[0]
    try:
        item = ill_items.check_out_item(client, item_id=item_id, user_id=user_id, address=address)
    except ill_items.IllRefused as exc:
        raise _problem_for(exc, scheme=CHECK_OUT) from None
    agency = our_agency(client, request)
    body = ET.Element("CheckOutItemResponse")
    identifier(body, "Item", agency, item.resource.identifier)
    identifier(body, "User", agency, user_id or ill_items.patron_identifier(item.reservation.patron))
    checkout = item.checkout
    due = checkout.due_at if checkout is not None else item.reservation.ends_at
    sub(body, "DateDue", xml_date_time(due))
    return body


def check_in_item(client: ProtocolClient, request: Request, address: str | None) -> ET.Element:
    item_id = request.text("ItemId", "ItemIdentifierValue")
    if not item_id:
        raise NcipProblem("Needed Data Missing", "Send the ItemId of the item to check in.",
                          element="ItemIdentifierValue")  # fmt: skip
    try:
        item = ill_items.check_in_item(client, item_id=item_id, address=address)
    except ill_items.IllRefused as exc:
        raise _problem_for(exc, scheme=CHECK_IN) from None
    agency = our_agency(client, request)
    body = ET.Element("CheckInItemResponse")
    identifier(body, "Item", agency, item.resource.identifier)
    patron_id = ill_items.patron_identifier(item.reservation.patron)
    if patron_id:
        identifier(body, "User", agency, patron_id)
    return body


def cancel_request_item(client: ProtocolClient, request: Request, address: str | None) -> ET.Element:
    request_agency = request.text("RequestId", "AgencyId")
    request_value = request.text("RequestId", "RequestIdentifierValue")
    item_value = request.text("ItemId", "ItemIdentifierValue")
    if not request_value and not item_value:
        raise NcipProblem(
            "Needed Data Missing", "Send the RequestId (or the ItemId) of the request to cancel.", element="RequestId"
        )
    try:
        if not request_value:  # the schema lets a cancellation name only the item
            request_agency, request_value = ill_items.request_of(client, item_value)
        item = ill_items.cancel_request(client, request_agency=request_agency, request_id=request_value,
                                        address=address)  # fmt: skip
    except ill_items.IllRefused as exc:
        raise _problem_for(exc) from None
    agency = our_agency(client, request)
    body = ET.Element("CancelRequestItemResponse")
    identifier(body, "Request", item.request_agency, item.request_id)
    identifier(body, "Item", agency, item.resource.identifier)
    user_id = request.text("UserId", "UserIdentifierValue") or ill_items.patron_identifier(item.reservation.patron)
    identifier(body, "User", agency, user_id)
    return body


HANDLERS: dict[str, Callable[[ProtocolClient, Request, str | None], ET.Element]] = {
    "LookupUser": lookup_user,
    "AcceptItem": accept_item,
    "CheckOutItem": check_out_item,
    "CheckInItem": check_in_item,
    "CancelRequestItem": cancel_request_item,
}


def answer(client: ProtocolClient, request: Request, address: str | None) -> bytes:
    """The response document for a parsed request: the service's answer, or its Problem."""
    handler = HANDLERS.get(request.service)
    if handler is None:
        raise NcipProblem(
            "Unsupported Service", f"{request.service[:60]} is not supported by this responder.",
            element=request.service[:60], top_level=True,
        )  # fmt: skip
    root = message()
    try:
        body = handler(client, request, address)
    except NcipProblem as exc:
        if exc.top_level:
            raise
        response = sub(root, f"{request.service}Response")
        response_header(response, request.header, our_agency(client, request))
        problem(response, exc)
        return serialise(root)
    response = sub(root, body.tag)
    response_header(response, request.header, our_agency(client, request))
    for child in body:
        response.append(child)
    return serialise(root)
