"""AcceptItem -> CheckOutItem -> CheckInItem for an item borrowed through interlibrary loan, and CancelRequestItem."""

from __future__ import annotations

import datetime as dt

import pytest

from patronage.blocks import services as block_services
from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.libraries.models import Library
from patronage.patrons.models import Patron
from patronage.reservations.models import Reservation
from patronage.reservations.rules import State
from patronage.resources.models import Resource
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import IllItem, ProtocolClient
from tests.factories import SYSTEM, make_library, make_patron, make_patron_type

from .conftest import basic, message, post, text, valid

pytestmark = pytest.mark.django_db
PATRON = "21000000000777"
ITEM = "LEH-20191122954"


@pytest.fixture
def patron(library: Library) -> Patron:
    return make_patron(library, barcode=PATRON, person_id="P-7")


def _accept(request_id: str = ITEM, item: str = ITEM, user: str = PATRON, extra: str = "") -> str:
    inner = (
        f"<ns1:RequestId><ns1:AgencyId>RESHARE</ns1:AgencyId><ns1:RequestIdentifierValue>{request_id}"
        "</ns1:RequestIdentifierValue></ns1:RequestId>"
        "<ns1:RequestedActionType>Hold For Pickup</ns1:RequestedActionType>"
        f"<ns1:UserId><ns1:UserIdentifierValue>{user}</ns1:UserIdentifierValue></ns1:UserId>"
        f"<ns1:ItemId><ns1:ItemIdentifierValue>{item}</ns1:ItemIdentifierValue></ns1:ItemId>{extra}"
        "<ns1:ItemOptionalFields><ns1:BibliographicDescription><ns1:Author>Knuth</ns1:Author>"
        "<ns1:Title>The Art of Computer Programming</ns1:Title></ns1:BibliographicDescription></ns1:ItemOptionalFields>"
        "<ns1:PickupLocation>FAIRCHILD</ns1:PickupLocation>"
    )
    return message("AcceptItem", inner)


def _check_out(item: str = ITEM, user: str = PATRON) -> str:
    inner = (
        f"<ns1:UserId><ns1:UserIdentifierValue>{user}</ns1:UserIdentifierValue></ns1:UserId>"
        f"<ns1:ItemId><ns1:ItemIdentifierValue>{item}</ns1:ItemIdentifierValue></ns1:ItemId>"
    )
    return message("CheckOutItem", inner)


def _check_in(item: str = ITEM) -> str:
    inner = (
        f"<ns1:ItemId><ns1:ItemIdentifierValue>{item}</ns1:ItemIdentifierValue></ns1:ItemId>"
        "<ns1:ItemElementType>Bibliographic Description</ns1:ItemElementType>"
    )
    return message("CheckInItem", inner)


def _cancel(request_id: str = ITEM, user: str = PATRON) -> str:
    inner = (
        f"<ns1:UserId><ns1:UserIdentifierValue>{user}</ns1:UserIdentifierValue></ns1:UserId>"
        f"<ns1:RequestId><ns1:AgencyId>RESHARE</ns1:AgencyId><ns1:RequestIdentifierValue>{request_id}"
        "</ns1:RequestIdentifierValue></ns1:RequestId><ns1:RequestType>Hold</ns1:RequestType>"
    )
    return message("CancelRequestItem", inner)


def test_the_whole_loan_accept_check_out_check_in_each_repeated_once(
    patron: Patron, reshare: tuple[ProtocolClient, str]
) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    for _ in range(2):  # a client's retry gets the first answer and changes nothing
        doc = valid(post(_accept(), auth).content)
        assert text(doc, "//n:AcceptItemResponse/n:RequestId/n:RequestIdentifierValue") == ITEM
        assert text(doc, "//n:AcceptItemResponse/n:ItemId/n:ItemIdentifierValue") == ITEM
    item = IllItem.objects.get()
    assert item.state == IllItem.State.ACCEPTED
    resource = Resource.objects.get(identifier=ITEM)
    assert resource.name == "The Art of Computer Programming"
    assert resource.center_id == client.ill_center_id
    assert resource.resource_type.visible_in_portal is False
    reservation = Reservation.objects.get(pk=item.reservation_id)
    assert reservation.patron_id == patron.pk
    assert reservation.state == State.RESERVED
    assert reservation.ends_at - reservation.starts_at >= dt.timedelta(days=27)

    for _ in range(2):
        doc = valid(post(_check_out(), auth).content)
        assert text(doc, "//n:CheckOutItemResponse/n:ItemId/n:ItemIdentifierValue") == ITEM
        assert text(doc, "//n:CheckOutItemResponse/n:UserId/n:UserIdentifierValue") == PATRON
        due = dt.datetime.fromisoformat(text(doc, "//n:CheckOutItemResponse/n:DateDue"))
    assert Checkout.objects.filter(patron=patron).count() == 1
    checkout = Checkout.objects.get(patron=patron)
    assert abs(due - checkout.due_at) < dt.timedelta(seconds=1)

    for _ in range(2):
        doc = valid(post(_check_in(), auth).content)
        assert text(doc, "//n:CheckInItemResponse/n:ItemId/n:ItemIdentifierValue") == ITEM
        assert text(doc, "//n:CheckInItemResponse/n:UserId/n:UserIdentifierValue") == "P-7"
    checkout.refresh_from_db()
    assert checkout.completed_at is not None
    resource.refresh_from_db()
    assert resource.out_of_service_from is not None  # retired: it goes back to the lender
    assert IllItem.objects.get().state == IllItem.State.CHECKED_IN


def test_a_date_for_return_sets_the_date_due(patron: Patron, reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    when = (clock.now() + dt.timedelta(days=10)).replace(microsecond=0)
    extra = f"<ns1:DateForReturn>{when.strftime('%Y-%m-%dT%H:%M:%SZ')}</ns1:DateForReturn>"
    valid(post(_accept(extra=extra), auth).content)
    doc = valid(post(_check_out(), auth).content)
    assert dt.datetime.fromisoformat(text(doc, "//n:DateDue")) == when


def test_a_blocked_patron_gets_user_blocked_with_the_reason(
    patron: Patron, reshare: tuple[ProtocolClient, str]
) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    valid(post(_accept(), auth).content)
    block_services.block_patron(actor=SYSTEM, patron=patron, comment="internal: rude at desk")
    response = post(_check_out(), auth)
    doc = valid(response.content)
    assert text(doc, "//n:CheckOutItemResponse/n:Problem/n:ProblemType") == "User Blocked"
    assert "blocked_by_staff" in text(doc, "//n:Problem/n:ProblemDetail")
    assert b"rude" not in response.content
    assert not Checkout.objects.exists()


def test_check_out_to_someone_else_is_refused(
    library: Library, patron: Patron, reshare: tuple[ProtocolClient, str]
) -> None:
    make_patron(library, barcode="21000000000888")
    client, secret = reshare
    auth = basic(client.login, secret)
    valid(post(_accept(), auth).content)
    doc = valid(post(_check_out(user="21000000000888"), auth).content)
    assert text(doc, "//n:Problem/n:ProblemType") == "User Ineligible To Check Out This Item"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (_check_out(item="NO-SUCH"), "Unknown Item"),
        (_check_in(item="NO-SUCH"), "Unknown Item"),
        (_accept(user="NOBODY"), "Unknown User"),
        (_accept(item="bad id with spaces"), "Element Rule Violated"),
        (_cancel(request_id="NO-SUCH"), "Unknown Request"),
        (message("CheckInItem", ""), "Needed Data Missing"),
    ],
    ids=[
        "check out unknown item",
        "check in unknown item",
        "accept for unknown user",
        "bad item id",
        "cancel unknown request",
        "check in without item",
    ],
)
def test_unknown_things_get_the_standard_problem(
    patron: Patron, reshare: tuple[ProtocolClient, str], body: str, expected: str
) -> None:
    client, secret = reshare
    response = post(body, basic(client.login, secret))
    assert response.status_code == 200
    assert text(valid(response.content), "//n:Problem/n:ProblemType") == expected
    assert not Resource.objects.exists()


def test_accept_item_without_an_ill_center_says_how_to_set_it_up(library: Library, patron: Patron) -> None:
    data = {"name": "ReShare", "login": "reshare-x", "protocols": ["ncip"], "allowed_networks": "127.0.0.1"}
    client, secret = clients.create_client(actor=SYSTEM, library=library, data=data)
    doc = valid(post(_accept(), basic(client.login, secret)).content)
    assert text(doc, "//n:Problem/n:ProblemType") == "Cannot Accept Item"
    assert "checkout center" in text(doc, "//n:Problem/n:ProblemDetail")
    assert not Resource.objects.exists()


def test_cancel_request_ends_the_hold_and_retires_the_item(patron: Patron, reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    valid(post(_accept(), auth).content)
    for _ in range(2):
        doc = valid(post(_cancel(), auth).content)
        assert text(doc, "//n:CancelRequestItemResponse/n:RequestId/n:RequestIdentifierValue") == ITEM
    item = IllItem.objects.get()
    assert item.state == IllItem.State.CANCELLED
    assert Reservation.objects.get(pk=item.reservation_id).state == State.CANCELLED
    assert Resource.objects.get(identifier=ITEM).out_of_service_from is not None
    doc = valid(post(_check_out(), auth).content)
    assert text(doc, "//n:Problem/n:ProblemType") == "Resource Cannot Be Provided"


def test_a_cancellation_may_name_only_the_item(patron: Patron, reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    auth = basic(client.login, secret)
    valid(post(_accept(), auth).content)
    by_item = message(
        "CancelRequestItem",
        f"<ns1:ItemId><ns1:ItemIdentifierValue>{ITEM}</ns1:ItemIdentifierValue></ns1:ItemId>"
        "<ns1:RequestType>Hold</ns1:RequestType>",
    )
    doc = valid(post(by_item, auth).content)
    assert text(doc, "//n:CancelRequestItemResponse/n:ItemId/n:ItemIdentifierValue") == ITEM
    assert IllItem.objects.get().state == IllItem.State.CANCELLED
    neither = message("CancelRequestItem", "<ns1:RequestType>Hold</ns1:RequestType>")
    doc = valid(post(neither, auth).content)
    assert text(doc, "//n:Problem/n:ProblemType") == "Needed Data Missing"


def test_another_librarys_client_cannot_touch_the_item(patron: Patron, reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    valid(post(_accept(), basic(client.login, secret)).content)
    south = make_library("south")
    make_patron_type(south, "adult", may_use_ill=True)
    data = {"name": "ReShare", "login": "reshare-south", "protocols": ["ncip"], "allowed_networks": "127.0.0.1"}
    south_client, south_secret = clients.create_client(actor=SYSTEM, library=south, data=data)
    for body in (_check_out(), _check_in(), _cancel()):
        doc = valid(post(body, basic(south_client.login, south_secret)).content)
        assert text(doc, "//n:Problem/n:ProblemType") in {"Unknown Item", "Unknown Request", "Unknown User"}
    assert IllItem.objects.get().state == IllItem.State.ACCEPTED


def test_the_ill_center_must_be_a_checkout_center_of_the_library(library: Library) -> None:
    from patronage.core.errors import ValidationFailed
    from tests.factories import make_branch

    plain = make_branch(library, "stacks", name="Stacks")  # not a checkout center
    other = make_branch(make_library("south"), "ill", is_checkout_center=True)
    for center in (plain.pk, other.pk, "x"):
        data = {"name": "R", "login": "r-1", "protocols": ["ncip"], "allowed_networks": "127.0.0.1",
                "ill_center": str(center), "ill_loan_days": "28"}  # fmt: skip
        with pytest.raises(ValidationFailed) as refused:
            clients.create_client(actor=SYSTEM, library=library, data=data)
        assert "ill_center" in refused.value.errors
    data = {"name": "R", "login": "r-1", "protocols": ["ncip"], "allowed_networks": "127.0.0.1", "ill_loan_days": "0"}
    with pytest.raises(ValidationFailed) as refused:
        clients.create_client(actor=SYSTEM, library=library, data=data)
    assert "ill_loan_days" in refused.value.errors
