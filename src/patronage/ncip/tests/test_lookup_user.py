"""LookupUser: the interlibrary-loan checklist of seed 001 through NCIP, as ReShare reads it."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patronage.core.models import AuditEvent
from patronage.credentials import services as credentials
from patronage.libraries.models import Library
from patronage.patrons.models import Patron
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import ProtocolClient
from patronage.resourcesharing.tests.test_eligibility import CASES, CURRENT, IDS
from tests.factories import SYSTEM, make_library, make_patron, make_patron_type

from .conftest import basic, find, lookup, message, post, privileges, reshare_status, text, valid

pytestmark = pytest.mark.django_db


def _rest(client: ProtocolClient, secret: str, identifier: str) -> dict[str, Any]:
    header = "Basic " + base64.b64encode(f"{client.login}:{secret}".encode()).decode()
    response = Client().post("/api/v1/ill/validate/", {"identifier": identifier}, content_type="application/json",
                             HTTP_AUTHORIZATION=header)  # fmt: skip
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


@pytest.mark.parametrize(("item", "setup", "identifier", "eligible", "codes", "failing"), CASES, ids=IDS)
def test_each_checklist_item_gives_the_same_decision_through_ncip_as_through_rest(
    library: Library, reshare: tuple[ProtocolClient, str], item: str, setup: Callable[[Library], Patron],
    identifier: str, eligible: bool, codes: list[str], failing: str,
) -> None:  # fmt: skip
    setup(library)
    client, secret = reshare
    rest = _rest(client, secret, identifier)
    response = post(lookup(identifier, "User Privilege", "Block Or Trap"), basic(client.login, secret))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml; charset=UTF-8"
    doc = valid(response.content)
    if not rest["found"]:
        assert text(doc, "//n:LookupUserResponse/n:Problem/n:ProblemType") == "Unknown User"
        assert text(doc, "//n:Problem/n:ProblemValue") == identifier
        return
    assert reshare_status(doc) == ("OK" if rest["eligible"] else "BLOCKED")
    assert rest["eligible"] is eligible
    status = find(doc, "//n:UserPrivilege[n:AgencyUserPrivilegeType='STATUS']")[0]
    description = status.findtext("{http://www.niso.org/2008/ncip}UserPrivilegeDescription")
    assert [r["code"] for r in rest["reasons"]] == codes
    if codes:
        assert description.split("; ") == codes
        assert [str(t) for t in find(doc, "//n:BlockOrTrap/n:BlockOrTrapType/text()")] == codes
    assert privileges(doc)["PROFILE"] == rest["patron"]["patron_type"].upper()
    assert text(doc, "/n:NCIPMessage/n:LookupUserResponse/n:UserId/n:UserIdentifierValue") == identifier


def test_an_active_patron_comes_back_with_name_email_phone_and_status(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    make_patron(library, barcode=CURRENT, person_id="P-9", first_name="Grace", last_name="Hopper",
                primary_email="grace@example.org", phones={"mobile": "+1 202 555 0147"})  # fmt: skip
    client, secret = reshare
    body = lookup(CURRENT, "Name Information", "User Address Information", "User Privilege", "User Id")
    doc = valid(post(body, basic(client.login, secret)).content)
    assert text(doc, "//n:StructuredPersonalUserName/n:GivenName") == "Grace"
    assert text(doc, "//n:StructuredPersonalUserName/n:Surname") == "Hopper"
    addresses = {
        n.findtext("{*}ElectronicAddressType"): n.findtext("{*}ElectronicAddressData")
        for n in find(doc, "//n:ElectronicAddress")
    }
    assert addresses == {"mailto": "grace@example.org", "tel": "+12025550147"}
    assert privileges(doc) == {"PROFILE": "ADULT", "STATUS": "ACTIVE"}
    # the header is answered with the agencies swapped
    assert text(doc, "//n:ResponseHeader/n:FromAgencyId/n:AgencyId") == "NORTH"
    assert text(doc, "//n:ResponseHeader/n:ToAgencyId/n:AgencyId") == "RESHARE"
    assert find(doc, "//n:BlockOrTrap") == []  # not asked for


def test_name_and_address_are_only_sent_when_asked_for(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    make_patron(library, barcode=CURRENT, primary_email="private@example.org")
    client, secret = reshare
    response = post(lookup(CURRENT, "User Privilege"), basic(client.login, secret))
    valid(response.content)
    assert b"private@example.org" not in response.content
    assert b"GivenName" not in response.content


def test_a_request_without_header_and_with_an_unqualified_version_is_answered(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    make_patron(library, barcode=CURRENT)
    client, secret = reshare
    doc = valid(post(lookup(CURRENT, header=False, qualified=False), basic(client.login, secret)).content)
    assert find(doc, "//n:ResponseHeader") == []
    assert privileges(doc)["STATUS"] == "ACTIVE"


def test_a_request_in_no_namespace_is_answered_in_the_schemas_namespace(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    make_patron(library, barcode=CURRENT)
    client, secret = reshare
    body = f'<NCIPMessage version="x"><LookupUser><UserId><UserIdentifierValue>{CURRENT}</UserIdentifierValue></UserId></LookupUser></NCIPMessage>'
    doc = valid(post(body, basic(client.login, secret)).content)
    assert privileges(doc)["STATUS"] == "ACTIVE"


def test_lookup_by_barcode_with_a_pin_checks_the_pin(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    patron = make_patron(library, barcode=CURRENT)
    credentials.set_password(patron, "plum-orchard-41-lantern", actor=SYSTEM)
    client, secret = reshare

    def by_pin(pin: str) -> Any:
        inner = (
            "<ns1:AuthenticationInput><ns1:AuthenticationInputData>" + CURRENT + "</ns1:AuthenticationInputData>"
            "<ns1:AuthenticationDataFormatType>text</ns1:AuthenticationDataFormatType>"
            "<ns1:AuthenticationInputType>Barcode Id</ns1:AuthenticationInputType></ns1:AuthenticationInput>"
            "<ns1:AuthenticationInput><ns1:AuthenticationInputData>" + pin + "</ns1:AuthenticationInputData>"
            "<ns1:AuthenticationDataFormatType>text</ns1:AuthenticationDataFormatType>"
            "<ns1:AuthenticationInputType>PIN</ns1:AuthenticationInputType></ns1:AuthenticationInput>"
        )
        return valid(post(message("LookupUser", inner), basic(client.login, secret)).content)

    assert privileges(by_pin("plum-orchard-41-lantern"))["STATUS"] == "ACTIVE"
    wrong = by_pin("wrong-guess")
    assert text(wrong, "//n:Problem/n:ProblemType") == "User Authentication Failed"
    assert b"plum" not in post(lookup(CURRENT), basic(client.login, secret)).content
    for _ in range(5):
        by_pin("wrong-guess")
    locked = by_pin("plum-orchard-41-lantern")  # the right PIN, but the account is locked now
    assert text(locked, "//n:Problem/n:ProblemType") == "User Authentication Failed"
    assert "Too many" in text(locked, "//n:Problem/n:ProblemDetail")


def test_lookup_by_username_authentication_input_without_header(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    make_patron(library, barcode=CURRENT, person_id="myluid")
    client, secret = reshare
    inner = (
        "<ns1:AuthenticationInput><ns1:AuthenticationInputData>myluid</ns1:AuthenticationInputData>"
        "<ns1:AuthenticationDataFormatType>text</ns1:AuthenticationDataFormatType>"
        "<ns1:AuthenticationInputType>username</ns1:AuthenticationInputType></ns1:AuthenticationInput>"
        "<ns1:UserElementType>User Privilege</ns1:UserElementType>"
    )
    doc = valid(post(message("LookupUser", inner, header=False), basic(client.login, secret)).content)
    assert privileges(doc)["STATUS"] == "ACTIVE"


def test_missing_user_id_is_needed_data_missing(reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    doc = valid(post(message("LookupUser", ""), basic(client.login, secret)).content)
    assert text(doc, "//n:LookupUserResponse/n:Problem/n:ProblemType") == "Needed Data Missing"


def test_each_lookup_is_audited_with_client_patron_and_time(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    patron = make_patron(library, barcode=CURRENT)
    client, secret = reshare
    post(lookup(CURRENT), basic(client.login, secret))
    event = AuditEvent.objects.filter(action="patron.ill_validated").get()
    assert event.patron_id == patron.pk
    assert event.channel == "ncip"
    assert event.detail["client_name"] == "ReShare"
    assert event.at is not None


def test_a_lookup_is_one_audit_event_naming_the_client_for_sign_in_and_read(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    patron = make_patron(library, barcode=CURRENT)
    client, secret = reshare
    post(lookup(CURRENT), basic(client.login, secret))
    events = list(AuditEvent.objects.filter(channel="ncip"))
    assert [e.action for e in events] == ["patron.ill_validated"]
    assert events[0].patron_id == patron.pk
    assert events[0].detail["client_id"] == client.pk
    assert events[0].source_ip == "127.0.0.1"


def test_a_lookup_that_reads_no_patron_still_records_the_clients_sign_in(reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    post(message("LookupUser", ""), basic(client.login, secret))  # no identifier: nothing is read
    events = list(AuditEvent.objects.filter(channel="ncip"))
    assert [(e.action, e.detail["outcome"], e.detail["client_id"]) for e in events] == [
        ("protocol_client.authenticate", "ok", client.pk)
    ]


def test_the_phone_sent_is_the_mobile_else_home_else_work(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    client, secret = reshare
    make_patron(library, barcode=CURRENT, phones={"work": "+1 202 555 0101", "home": "+1 202 555 0102"})
    make_patron(library, barcode="21000000000002", phones={"home": "+1 202 555 0103", "mobile": "+1 202 555 0104"})
    for barcode, expected in ((CURRENT, "+12025550102"), ("21000000000002", "+12025550104")):
        doc = valid(post(lookup(barcode, "User Address Information"), basic(client.login, secret)).content)
        assert text(doc, "//n:ElectronicAddress[n:ElectronicAddressType='tel']/n:ElectronicAddressData") == expected


def test_another_librarys_patron_is_an_unknown_user(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    south = make_library("south")
    make_patron_type(south, "adult", may_use_ill=True)
    make_patron(south, barcode="39000000000001", person_id="S-1", first_name="Secretive")
    client, secret = reshare
    for identifier in ("S-1", "39000000000001"):
        response = post(lookup(identifier, "Name Information"), basic(client.login, secret))
        doc = valid(response.content)
        assert text(doc, "//n:Problem/n:ProblemType") == "Unknown User"
        assert b"Secretive" not in response.content


def test_the_south_client_sees_only_south(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    make_patron(library, barcode=CURRENT, first_name="Northerner")
    south = make_library("south")
    make_patron_type(south, "adult", may_use_ill=True)
    data = {"name": "ReShare", "login": "reshare-south", "protocols": ["ncip"], "allowed_networks": "127.0.0.1"}
    south_client, south_secret = clients.create_client(actor=SYSTEM, library=south, data=data)
    response = post(lookup(CURRENT, "Name Information"), basic(south_client.login, south_secret))
    assert text(valid(response.content), "//n:Problem/n:ProblemType") == "Unknown User"
    assert b"Northerner" not in response.content
