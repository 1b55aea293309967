"""The interlibrary-loan checklist (seed 001): one answer through the service, the staff page and REST."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from patronage.blocks import services as block_services
from patronage.core.models import AuditEvent
from patronage.credentials import services as credentials
from patronage.fines import services as fine_services
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron, PatronType
from patronage.resourcesharing import clients, eligibility
from patronage.resourcesharing.models import ProtocolClient
from tests.factories import SYSTEM, make_library, make_patron, make_patron_type, make_staff

pytestmark = pytest.mark.django_db

CURRENT = "21000000000777"
OLD = "21000000000111"


@pytest.fixture
def library() -> Library:
    library = make_library("north", name="North Library")
    make_patron_type(library, "adult", name="Adult", may_use_ill=True)
    make_patron_type(library, "community", name="Community", may_use_ill=False)
    return library


@pytest.fixture
def reshare(library: Library) -> tuple[ProtocolClient, str]:
    data = {"name": "ReShare", "login": "reshare-north", "protocols": ["rest", "ncip"],
            "allowed_networks": "127.0.0.1\n10.0.0.0/8"}  # fmt: skip
    return clients.create_client(actor=SYSTEM, library=library, data=data)


def _type(library: Library, code: str) -> int:
    return PatronType.objects.get(library=library, code=code).pk


def _patron(library: Library, **data: Any) -> Patron:
    data.setdefault("patron_type", _type(library, "adult"))
    return make_patron(library, barcode=CURRENT, person_id="P-7", first_name="Grace", last_name="Hopper", **data)


# Each row: what is wrong with the record, the identifier the requester sends, and the expected codes.
def _clear(library: Library) -> Patron:
    return _patron(library)


def _inactive(library: Library) -> Patron:
    patron = _patron(library)
    Patron.objects.filter(pk=patron.pk).update(status=Patron.Status.INACTIVE)
    return patron


def _expired(library: Library) -> Patron:
    patron = _patron(library)
    Patron.objects.filter(pk=patron.pk).update(expires_on=dt.date(2020, 1, 1))
    return patron


def _no_barcode(library: Library) -> Patron:
    patron = _patron(library)
    patron_services.deactivate_barcode(actor=SYSTEM, patron=patron)
    return patron


def _old_card(library: Library) -> Patron:
    patron = make_patron(library, barcode=OLD, person_id="P-7", first_name="Grace", last_name="Hopper",
                         patron_type=_type(library, "adult"))  # fmt: skip
    patron_services.issue_barcode(actor=SYSTEM, patron=patron, number=CURRENT)
    return patron


def _fines(library: Library) -> Patron:
    patron = _patron(library)
    fine_services.add_fee(actor=SYSTEM, patron=patron, amount="12.00", description="Lost book")
    return patron


def _blocked(library: Library) -> Patron:
    patron = _patron(library)
    block_services.block_patron(actor=SYSTEM, patron=patron, comment="internal: rude at desk")
    return patron


def _community(library: Library) -> Patron:
    return _patron(library, patron_type=_type(library, "community"))


def _unconfigured(library: Library) -> Patron:
    PatronType.objects.filter(library=library).update(may_use_ill=False)
    return _patron(library)


def _duplicate(library: Library) -> Patron:
    patron = _patron(library, birth_date="1990-04-23")
    make_patron(library, barcode="21000000000999", first_name="grace", last_name="HOPPER", birth_date="1990-04-23")
    return patron


CASES: list[tuple[str, Callable[[Library], Patron], str, bool, list[str], str]] = [
    # (checklist item, setup, identifier, eligible, reason codes, the item that fails or warns)
    ("record exists", _clear, "NO-SUCH-ID", False, ["patron_not_found"], "record_found"),
    ("record active", _inactive, CURRENT, False, ["record_inactive"], "record_active"),
    ("record not expired", _expired, CURRENT, False, ["record_expired"], "record_active"),
    ("newest barcode active", _no_barcode, "P-7", False, ["no_active_barcode"], "active_barcode"),
    ("user id matches the current barcode", _old_card, OLD, False, ["identifier_replaced"], "identifier_current"),
    ("fines", _fines, CURRENT, False, ["fines_over_limit"], "fines"),
    ("staff block", _blocked, CURRENT, False, ["blocked_by_staff"], "staff_block"),
    ("type authorised", _community, CURRENT, False, ["patron_type_not_authorized_for_ill"], "patron_type"),
    ("ILL configured at all", _unconfigured, "P-7", False, ["ill_not_configured"], "patron_type"),
    ("second account", _duplicate, "P-7", True, [], "duplicates"),
    ("all clear, by user id", _clear, "P-7", True, [], ""),
    ("all clear, by barcode", _clear, CURRENT, True, [], ""),
]
IDS = [c[0] for c in CASES]


def _rest(client: ProtocolClient, secret: str, body: dict[str, Any], *, basic: bool = True) -> Any:
    header = "Basic " + base64.b64encode(f"{client.login}:{secret}".encode()).decode() if basic else f"Bearer {secret}"
    return Client().post("/api/v1/ill/validate/", body, content_type="application/json", HTTP_AUTHORIZATION=header)


@pytest.mark.parametrize(("item", "setup", "identifier", "eligible", "codes", "failing"), CASES, ids=IDS)
def test_each_checklist_item_gives_the_same_answer_in_the_service_the_staff_page_and_rest(
    library: Library, reshare: tuple[ProtocolClient, str], item: str, setup: Callable[[Library], Patron],
    identifier: str, eligible: bool, codes: list[str], failing: str,
) -> None:  # fmt: skip
    patron = setup(library)
    result = eligibility.check(library.pk, identifier)
    assert result.eligible is eligible
    assert result.codes == codes
    by_key = {i.key: i for i in result.items}
    if failing:
        expected = "warn" if failing == "duplicates" else "fail"
        assert by_key[failing].status == expected
        assert by_key[failing].fix, "a failing item says what to do"
    others = [i for i in result.items if i.key != failing and i.status not in ("pass", "not_checked")]
    assert others == []

    client, secret = reshare
    response = _rest(client, secret, {"identifier": identifier})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["eligible"] is eligible
    assert [r["code"] for r in body["reasons"]] == codes
    assert {c["key"]: c["status"] for c in body["checks"]} == {k: i.status.value for k, i in by_key.items()}

    if result.patron is not None:
        staff = Client()
        staff.force_login(make_staff(library, [Permission.VIEW_PATRONS]))
        page = staff.get(f"/staff/patrons/{patron.pk}/ill/").content.decode()
        assert ('data-eligible="yes"' in page) is (eligible or failing == "identifier_current")
        for code in codes:
            if code != "identifier_replaced":  # the staff page checks the record, not a requester's old card
                assert f"<code>{code}</code>" in page
        if failing and failing != "identifier_current":
            assert f'data-check="{failing}" data-status="{by_key[failing].status.value}"' in page


def test_an_old_card_says_when_it_was_replaced_and_never_reveals_the_new_one(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    _old_card(library)
    client, secret = reshare
    response = _rest(client, secret, {"identifier": OLD, "identifier_type": "barcode"})
    text = response.content.decode()
    assert CURRENT not in text
    reason = response.json()["reasons"][0]
    assert reason["code"] == "identifier_replaced"
    assert "was replaced on " in reason["message"]
    assert reason["details"]["replaced_on"]


def test_the_staff_comment_of_a_block_is_not_sent_to_the_requesting_system(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    _blocked(library)
    client, secret = reshare
    assert "rude" not in _rest(client, secret, {"identifier": CURRENT}).content.decode()


def test_another_librarys_patron_is_not_found(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    south = make_library("south")
    make_patron_type(south, "adult", may_use_ill=True)
    make_patron(south, barcode="39000000000001", person_id="S-1")
    client, secret = reshare
    body = _rest(client, secret, {"identifier": "S-1"}).json()
    assert body["found"] is False
    assert [r["code"] for r in body["reasons"]] == ["patron_not_found"]


def test_each_validation_is_audited_with_the_client_and_the_patron(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    patron = _clear(library)
    client, secret = reshare
    _rest(client, secret, {"identifier": CURRENT}, basic=False)
    event = AuditEvent.objects.filter(action="patron.ill_validated").get()
    assert event.patron_id == patron.pk
    assert event.detail["client_name"] == "ReShare"
    assert event.detail["eligible"] is True


def test_a_pin_is_checked_like_a_portal_sign_in(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    patron = _clear(library)
    credentials.set_password(patron, "plum-orchard-41-lantern", actor=SYSTEM)
    client, secret = reshare
    good = _rest(client, secret, {"identifier": "P-7", "pin": "plum-orchard-41-lantern"})
    assert good.status_code == 200
    assert good.json()["pin_checked"] is True
    bad = _rest(client, secret, {"identifier": "P-7", "pin": "wrong"})
    assert bad.status_code == 400
    assert bad["Content-Type"] == "application/problem+json"
    assert bad.json()["code"] == "patron_authentication_failed"
    refused = AuditEvent.objects.get(action="patron.pin_refused")
    assert (refused.patron_id, refused.detail["client_name"], refused.detail["locked"]) == (patron.pk, "ReShare", False)


def test_wrong_pins_through_a_hub_count_per_hub_not_per_its_address(
    library: Library, reshare: tuple[ProtocolClient, str], settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 2
    settings.LOGIN_FAILURE_LIMIT_PER_CLIENT = 50
    patron = _clear(library)
    credentials.set_password(patron, "plum-orchard-41-lantern", actor=SYSTEM)
    client, secret = reshare
    for n in range(3):  # three other patrons mistype theirs through the same hub
        other = make_patron(library, barcode=f"2100000000990{n}", patron_type=_type(library, "adult"))
        credentials.set_password(other, "their-own-pin-99", actor=SYSTEM)
        refused = _rest(client, secret, {"identifier": other.barcodes.get().number, "pin": "nope"})
        assert refused.json()["code"] == "patron_authentication_failed"
    good = _rest(client, secret, {"identifier": "P-7", "pin": "plum-orchard-41-lantern"})
    assert good.status_code == 200, good.content
    assert good.json()["pin_checked"] is True


def test_a_record_number_is_accepted_only_with_the_patrons_pin(
    library: Library, reshare: tuple[ProtocolClient, str]
) -> None:
    patron = _clear(library)
    credentials.set_password(patron, "plum-orchard-41-lantern", actor=SYSTEM)
    client, secret = reshare
    walked = _rest(client, secret, {"identifier": str(patron.pk), "identifier_type": "patron_id"})
    assert walked.status_code == 400
    assert "PIN" in walked.json()["errors"]["identifier_type"][0]
    assert "Grace" not in walked.content.decode()
    with_pin = _rest(client, secret, {"identifier": str(patron.pk), "identifier_type": "patron_id",
                                      "pin": "plum-orchard-41-lantern"})  # fmt: skip
    assert with_pin.status_code == 200
    assert with_pin.json()["patron"]["patron_id"] == patron.pk


def test_bad_input_gets_a_field_error(library: Library, reshare: tuple[ProtocolClient, str]) -> None:
    client, secret = reshare
    response = _rest(client, secret, {"identifier_type": "barcode"})
    assert response.status_code == 400
    assert "identifier" in response.json()["errors"]
    response = _rest(client, secret, {"identifier": "x", "identifier_type": "shoe size"})
    assert "identifier_type" in response.json()["errors"]


def test_a_staff_api_token_is_not_a_client_credential(library: Library) -> None:
    from patronage.api.tokens import create_token

    _, raw = create_token(user=make_staff(library, list(Permission)), name="desk", expires_at=None)
    response = Client().post("/api/v1/ill/validate/", {"identifier": CURRENT}, content_type="application/json",
                             HTTP_AUTHORIZATION=f"Bearer {raw}")  # fmt: skip
    assert response.status_code == 401
    assert response.json()["code"] == "client_authentication_failed"


def test_the_library_view_groups_failing_patrons_by_cause_with_links(library: Library) -> None:
    for _ in range(3):
        make_patron(library, patron_type=_type(library, "community"))
    make_patron(library, patron_type=_type(library, "adult"))
    staff = Client()
    staff.force_login(make_staff(library, [Permission.VIEW_PATRONS]))
    page = staff.get("/staff/admin/ill/").content.decode()
    assert re.search(r"<td>3</td>\s*<td>patrons of type Community fail: type not authorised", page)
    community = _type(library, "community")
    listing = staff.get(f"/staff/admin/ill/patrons/?cause=patron_type_not_authorized_for_ill&type_id={community}")
    assert listing.status_code == 200
    assert len(re.findall(r'href="/staff/patrons/\d+/ill/"', listing.content.decode())) == 3


def test_the_library_view_says_when_interlibrary_loan_is_not_configured(library: Library) -> None:
    PatronType.objects.filter(library=library).update(may_use_ill=False)
    make_patron(library)
    staff = Client()
    staff.force_login(make_staff(library, [Permission.VIEW_PATRONS]))
    page = staff.get("/staff/admin/ill/").content.decode()
    assert "Interlibrary loan is not configured" in page
    assert 'data-cause="ill_not_configured"' in page


def test_a_client_calling_from_an_address_not_listed_is_refused_like_a_wrong_secret(library: Library) -> None:
    data = {"name": "Add-on", "login": "addon", "protocols": ["rest"], "allowed_networks": "203.0.113.0/24"}
    client, secret = clients.create_client(actor=SYSTEM, library=library, data=data)
    _clear(library)
    response = _rest(client, secret, {"identifier": CURRENT})  # the test client calls from 127.0.0.1
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Basic")
    assert response.json()["code"] == "client_authentication_failed"
    assert not AuditEvent.objects.filter(action="patron.ill_validated").exists()


def test_repeated_wrong_secrets_lock_the_client_out_with_retry_after(
    library: Library, reshare: tuple[ProtocolClient, str], settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 2
    client, secret = reshare
    assert _rest(client, "pcs_guess", {"identifier": CURRENT}).status_code == 401
    locked = _rest(client, "pcs_guess", {"identifier": CURRENT})
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) > 0
    assert _rest(client, secret, {"identifier": CURRENT}).status_code == 429
