"""Items borrowed from other libraries through interlibrary loan, as a resource-sharing system reports them.

The borrowing side of a loan through ReShare, told over NCIP (``patronage.ncip``): AcceptItem (the item has
arrived for a patron), CheckOutItem (handed to the patron), CheckInItem (back, to be returned to the lender),
and CancelRequestItem (the request ended before the patron got it). Each is the library's own lending:

* the item becomes a temporary resource of the type "Interlibrary loans" (made on first use, hidden from the
  portal) at the client's interlibrary-loan checkout center (``ProtocolClient.ill_center``);
* AcceptItem reserves it for the patron from now until the date due (the request's, else the client's
  ``ill_loan_days``), through ``reservations.services.create_reservation``, so every reservation and standing
  rule applies; CheckOutItem is ``circulation.services.check_out``; CheckInItem is ``check_in``, then the
  resource is taken out of service (retired: it goes back to the lender, and its history stays).

Every step is keyed on the requester's (agency, request id) or on the item id, so a client that repeats a
call gets the first answer and nothing changes twice.
"""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction

from patronage.circulation import services as circulation
from patronage.core import audit, clock
from patronage.core.errors import Conflict, DomainError, Refused, ValidationFailed
from patronage.libraries.models import Branch
from patronage.patrons.models import Barcode, Patron
from patronage.reservations import rules as reservation_rules
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources import services as resources
from patronage.resources.models import Resource, ResourceType

from . import eligibility
from .models import IllItem, ProtocolClient

ILL_TYPE_NAME = "Interlibrary loans"
CHANNEL = "ncip"


class IllRefused(DomainError):
    """The step cannot be done; ``code`` says which kind of refusal, ``reasons`` the rule codes behind it."""

    status = 409

    def __init__(self, code: str, message: str, *, reasons: tuple[str, ...] = (), value: str = "") -> None:
        super().__init__(message, code=code)
        self.reasons = reasons
        self.value = value


def actor_for(client: ProtocolClient, address: str | None) -> audit.Actor:
    return audit.Actor(user=None, channel=CHANNEL, source_ip=address, name=f"NCIP client {client.name}"[:150])


def patron_identifier(patron: Patron | None) -> str:
    """What a resource-sharing system knows the patron by: the Person-ID, else the current barcode."""
    if patron is None:
        return ""
    if patron.person_id:
        return str(patron.person_id)
    number = Barcode.objects.filter(patron_id=patron.pk, is_active=True).values_list("number", flat=True).first()
    return number or str(patron.pk)


def _patron(client: ProtocolClient, user_id: str) -> Patron:
    result = eligibility.check(client.library_id, user_id)
    if result.patron is None:
        raise IllRefused("unknown_user", "No patron of this library has this identifier.", value=user_id)
    return result.patron


def _ill_type(actor: audit.Actor, center: Branch) -> ResourceType:
    """The library's top-level type for interlibrary-loan items, lent at ``center`` (made on first use)."""
    found = ResourceType.objects.filter(library_id=center.library_id, parent=None, name=ILL_TYPE_NAME).first()
    if found is None:
        return resources.save_resource_type(
            actor=actor, library=center.library,
            data={"name": ILL_TYPE_NAME, "visible_in_portal": False, "centers": [center.pk],
                  "description": "Items borrowed from other libraries; made and retired by the resource-sharing "
                  "system (NCIP)."},
        )  # fmt: skip
    if not found.centers.filter(pk=center.pk).exists():
        found.centers.add(center)
    return found


def _reason_codes(exc: Refused) -> tuple[str, ...]:
    return tuple(str(r.get("code", "")) for r in exc.reasons if r.get("code"))


def _item(client: ProtocolClient, item_id: str) -> IllItem:
    found = (
        IllItem.objects.select_related("resource", "reservation", "checkout", "reservation__patron")
        .filter(library_id=client.library_id, resource__identifier=item_id)
        .order_by("-created_at", "-pk")
        .first()
    )
    if found is None:
        raise IllRefused("unknown_item", "No interlibrary-loan item of this library has this id.", value=item_id)
    return found


def request_of(client: ProtocolClient, item_id: str) -> tuple[str, str]:
    """(requesting agency, request id) of the newest interlibrary-loan item with this id, for a caller that
    names the item instead of the request (NCIP CancelRequestItem may send only its ItemId)."""
    item = _item(client, item_id.strip())
    return item.request_agency, item.request_id


def _locked(pk: int) -> IllItem:
    """The item read again with its row locked until the transaction ends, so each step decides on the state
    that is current, not on one read before a concurrent step changed it; the steps lock the reservation after
    it, always in this order.

    The lock is taken alone, then the item is read with its relations by a second query: a locking query
    that waited for a concurrent step sees that step's new row of the item, but (on PostgreSQL) the joined
    rows as they were when it started, i.e. a reservation still "reserved" and no checkout yet.
    """
    IllItem.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True).get()
    return IllItem.objects.select_related("resource", "reservation", "checkout", "reservation__patron").get(pk=pk)


def _save_state(item: IllItem, state: str, **changes: object) -> None:
    item.state = state
    item.updated_at = clock.now()
    for name, value in changes.items():
        setattr(item, name, value)
    item.save(update_fields=["state", "updated_at", *changes])


def accept_item(
    client: ProtocolClient,
    *,
    request_agency: str,
    request_id: str,
    item_id: str,
    user_id: str,
    title: str = "",
    date_due: dt.datetime | None = None,
    address: str | None = None,
) -> tuple[IllItem, bool]:
    """Hold a newly arrived item for the patron; returns the item and whether it was made now (not a repeat)."""
    agency, request = request_agency.strip()[:100], request_id.strip()[:100]
    if not request:
        raise IllRefused("needed_data_missing", "Send the RequestId of the interlibrary-loan request.")
    earlier = IllItem.objects.filter(library_id=client.library_id, request_agency=agency, request_id=request).first()
    if earlier is not None:
        return earlier, False
    center = client.ill_center
    if center is None:
        raise IllRefused(
            "ill_not_configured",
            "This client has no interlibrary-loan checkout center; an administrator sets it on the protocol "
            "client (Administration, Protocol clients).",
        )
    identifier = (item_id or request).strip()
    if not resources.IDENTIFIER_RE.match(identifier):
        raise IllRefused(
            "invalid_item_id", "The item id must be 1 to 64 letters, digits, '.', '_', '/' or '-'.", value=identifier
        )
    actor = actor_for(client, address)
    patron = _patron(client, user_id)
    now = clock.now()
    due = date_due if date_due is not None and date_due > now else now + dt.timedelta(days=client.ill_loan_days)
    name = (title.strip() or f"Interlibrary loan {request}")[:200]
    try:
        with transaction.atomic():
            kind = _ill_type(actor, center)
            resource = resources.save_resource(
                actor=actor, library=center.library,
                data={"identifier": identifier, "name": name, "resource_type": kind.pk, "center": center.pk,
                      "description": f"Borrowed through interlibrary loan, request {agency}/{request}."[:5000]},
            )  # fmt: skip
            reservation = reservations.create_reservation(
                actor=actor, patron=patron, center=center, starts_at=now, ends_at=due,
                lines=[{"resource": resource.pk}], title=name, note=f"Interlibrary loan {agency}/{request}"[:2000],
                channel=Reservation.Channel.API, walk_up=True,
            )  # fmt: skip
            item = IllItem.objects.create(
                library_id=client.library_id, client=client, request_agency=agency, request_id=request,
                resource=resource, reservation=reservation, title=name, created_at=now, updated_at=now,
            )  # fmt: skip
            audit.record(
                actor, "ill_item.accepted", library_id=client.library_id, patron_id=patron.pk,
                patron_label=patron.display_name, request=f"{agency}/{request}", resource_id=resource.pk,
                reservation_id=reservation.pk, client_id=client.pk,
            )  # fmt: skip
    except Refused as exc:
        raise IllRefused("cannot_accept", exc.message, reasons=_reason_codes(exc), value=identifier) from None
    except ValidationFailed as exc:
        if "identifier" in exc.errors:
            raise IllRefused("item_id_taken", exc.errors["identifier"][0], value=identifier) from None
        raise IllRefused("cannot_accept", "; ".join(m for ms in exc.errors.values() for m in ms)) from None
    except IntegrityError:  # the same request accepted at the same moment by a retry: answer the first
        earlier = IllItem.objects.filter(
            library_id=client.library_id, request_agency=agency, request_id=request
        ).first()
        if earlier is None:
            raise
        return earlier, False
    return item, True


def check_out_item(client: ProtocolClient, *, item_id: str, user_id: str = "", address: str | None = None) -> IllItem:
    """Hand the held item to its patron; a repeat answers the same checkout."""
    item = _item(client, item_id.strip())
    patron = item.reservation.patron
    if user_id.strip():
        given = _patron(client, user_id.strip())
        if patron is None or given.pk != patron.pk:
            raise IllRefused("wrong_user", "This item is held for another patron.", value=user_id.strip())
    actor = actor_for(client, address)
    try:
        with transaction.atomic():
            item = _locked(item.pk)
            if item.state == IllItem.State.CHECKED_OUT:
                return item
            if item.state != IllItem.State.ACCEPTED:
                raise IllRefused(
                    "item_not_available", "This interlibrary-loan item is back already, or its request was "
                    "cancelled.", value=item_id,
                )  # fmt: skip
            checkout = circulation.check_out(
                actor=actor, reservation=item.reservation, scanned=[item.resource.identifier]
            )
            _save_state(item, IllItem.State.CHECKED_OUT, checkout=checkout)
    except Refused as exc:
        raise IllRefused("user_blocked", exc.message, reasons=_reason_codes(exc), value=user_id or item_id) from None
    except Conflict as exc:
        raise IllRefused("cannot_check_out", exc.message, reasons=(exc.code,), value=item_id) from None
    return item


def _retire(actor: audit.Actor, resource: Resource, why: str) -> None:
    if resource.out_of_service_from is None:
        resources.take_out_of_service(actor=actor, resource=resource, comment=why)


def check_in_item(client: ProtocolClient, *, item_id: str, address: str | None = None) -> IllItem:
    """Take the item back (or end its hold if it never went out) and retire its resource; repeats change nothing."""
    item = _item(client, item_id.strip())
    actor = actor_for(client, address)
    with transaction.atomic():
        item = _locked(item.pk)
        if item.state in (IllItem.State.CHECKED_IN, IllItem.State.CANCELLED):
            return item
        if item.checkout is not None:
            if item.checkout.completed_at is None:
                circulation.check_in(actor=actor, checkout=item.checkout)
        elif reservation_rules.is_open(item.reservation.state):  # a hold that ended already needs no ending
            reservations.cancel_reservation(
                actor=actor, reservation=item.reservation, comment="Interlibrary-loan item checked in unused."
            )
        _retire(actor, item.resource, "Interlibrary-loan item returned to the lending library.")
        _save_state(item, IllItem.State.CHECKED_IN)
    return item


def cancel_request(
    client: ProtocolClient, *, request_agency: str, request_id: str, address: str | None = None
) -> IllItem:
    """End the hold of an accepted item that the patron never got; a checked-out item must be checked in."""
    agency, request = request_agency.strip()[:100], request_id.strip()[:100]
    found = (
        IllItem.objects.filter(library_id=client.library_id, request_agency=agency, request_id=request)
        .values_list("pk", flat=True)
        .first()
    )
    if found is None:
        raise IllRefused("unknown_request", "No interlibrary-loan request of this library has this id.", value=request)
    actor = actor_for(client, address)
    try:
        with transaction.atomic():
            item = _locked(found)
            if item.state == IllItem.State.CANCELLED:
                return item
            if item.state != IllItem.State.ACCEPTED:
                raise IllRefused(
                    "cannot_cancel", "The item has been checked out; check it in instead of cancelling.",
                    value=request,
                )  # fmt: skip
            reservations.cancel_reservation(
                actor=actor, reservation=item.reservation, comment="Interlibrary loan cancelled."
            )
            _retire(actor, item.resource, "Interlibrary-loan request cancelled.")
            _save_state(item, IllItem.State.CANCELLED)
    except Conflict as exc:  # the hold ended some other way (e.g. handed out at the desk): nothing to cancel
        raise IllRefused("cannot_cancel", exc.message, reasons=(exc.code,), value=request) from None
    return item
