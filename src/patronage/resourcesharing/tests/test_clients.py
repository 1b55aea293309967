"""Protocol clients: who may ask, from where, and the administrators' page that manages them."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from patronage.core.errors import ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.resourcesharing import clients
from patronage.resourcesharing.models import ProtocolClient
from tests.factories import SYSTEM, make_branch, make_library, make_staff

pytestmark = pytest.mark.django_db

DATA = {"name": "Kiosk 2", "login": "kiosk-2", "protocols": ["sip2"], "allowed_networks": "192.0.2.0/28"}


@pytest.fixture
def library() -> Library:
    return make_library("north", name="North Library")


@pytest.fixture
def kiosk(library: Library) -> tuple[ProtocolClient, str]:
    return clients.create_client(actor=SYSTEM, library=library, data=DATA)


def _outcome() -> str:
    return str(AuditEvent.objects.filter(action="protocol_client.authenticate").latest("pk").detail["outcome"])


def test_the_right_secret_from_an_allowed_address_signs_the_client_in(kiosk: tuple[ProtocolClient, str]) -> None:
    client, secret = kiosk
    assert clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.5") == client
    assert _outcome() == "ok"
    client.refresh_from_db()
    assert client.last_used_at is not None
    assert secret not in client.secret_digest


@pytest.mark.parametrize(
    ("change", "login", "protocol", "address", "outcome"),
    [
        ({}, "kiosk-2", "sip2", "192.0.2.5", "wrong_secret"),
        ({}, "nobody", "sip2", "192.0.2.5", "unknown_login"),
        ({}, "kiosk-2", "sip2", "198.51.100.7", "address_not_allowed"),
        ({}, "kiosk-2", "rest", "192.0.2.5", "protocol_not_allowed"),
        ({"enabled": False}, "kiosk-2", "sip2", "192.0.2.5", "disabled"),
    ],
)
def test_every_refusal_gives_one_answer_and_the_audit_log_says_which(
    kiosk: tuple[ProtocolClient, str], change: dict[str, Any], login: str, protocol: str, address: str, outcome: str
) -> None:
    client, secret = kiosk
    if change:
        clients.update_client(actor=SYSTEM, client=client, data={**DATA, **change})
    given = "pcs_wrong" if outcome == "wrong_secret" else secret
    with pytest.raises(clients.ClientAuthenticationFailed):
        clients.authenticate_client(protocol, login, given, address)
    assert _outcome() == outcome


def test_repeated_wrong_secrets_lock_the_login_even_for_the_right_secret(
    kiosk: tuple[ProtocolClient, str], settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    _, secret = kiosk
    for _ in range(2):
        with pytest.raises(clients.ClientAuthenticationFailed):
            clients.authenticate_client("sip2", "kiosk-2", "pcs_guess", "192.0.2.5")
    with pytest.raises(clients.ClientLocked):
        clients.authenticate_client("sip2", "kiosk-2", "pcs_guess", "192.0.2.5")
    with pytest.raises(clients.ClientLocked):
        clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.6")


def test_wrong_secrets_from_outside_the_clients_networks_cannot_lock_the_real_machine_out(
    kiosk: tuple[ProtocolClient, str], settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 3
    _, secret = kiosk
    for _ in range(2):
        with pytest.raises(clients.ClientAuthenticationFailed):
            clients.authenticate_client("sip2", "kiosk-2", "pcs_guess", "198.51.100.7")
    with pytest.raises(clients.ClientLocked):  # the guessing address is locked ...
        clients.authenticate_client("sip2", "kiosk-2", "pcs_guess", "198.51.100.7")
    with pytest.raises(clients.ClientLocked):
        clients.authenticate_client("sip2", "kiosk-2", secret, "198.51.100.7")
    # ... the kiosk, in its own network, is not.
    assert clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.5").login == "kiosk-2"


def test_a_reset_secret_replaces_the_old_one(kiosk: tuple[ProtocolClient, str]) -> None:
    client, old = kiosk
    new = clients.reset_secret(actor=SYSTEM, client=client)
    with pytest.raises(clients.ClientAuthenticationFailed):
        clients.authenticate_client("sip2", "kiosk-2", old, "192.0.2.5")
    assert clients.authenticate_client("sip2", "kiosk-2", new, "192.0.2.5") == client


def test_bad_settings_get_field_messages_and_write_nothing(library: Library) -> None:
    bad = {"name": "", "login": "bad login!", "protocols": ["gopher"], "allowed_networks": "not-an-ip",
           "charset": "ebcdic"}  # fmt: skip
    with pytest.raises(ValidationFailed) as caught:
        clients.create_client(actor=SYSTEM, library=library, data=bad)
    assert set(caught.value.errors) == {"name", "login", "protocols", "allowed_networks", "charset"}
    assert "not-an-ip" in caught.value.errors["allowed_networks"][0]
    assert not ProtocolClient.objects.exists()


def test_administrators_create_a_client_and_see_its_secret_once(library: Library) -> None:
    staff = Client()
    staff.force_login(make_staff(library, [Permission.CONFIGURE_LIBRARY]))
    form = staff.get("/staff/admin/clients/new/").content.decode()
    assert 'name="protocols" value="ncip"' in form
    response = staff.post("/staff/admin/clients/new/", {**DATA, "protocols": ["sip2", "rest"], "enabled": "on",
                                                        "charset": "cp850"})  # fmt: skip
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    secret = re.search(r'value="(pcs_[^"]+)"', response.content.decode())
    assert secret is not None
    created = ProtocolClient.objects.get()
    assert created.protocols == ["rest", "sip2"]
    assert clients.authenticate_client("rest", "kiosk-2", secret.group(1), "192.0.2.1") == created
    listing = staff.get("/staff/admin/clients/").content.decode()
    assert "Kiosk 2" in listing
    assert secret.group(1) not in listing
    edit = staff.get(f"/staff/admin/clients/{created.pk}/").content.decode()
    assert secret.group(1) not in edit


def test_the_form_shows_what_to_fix_with_status_400(library: Library) -> None:
    staff = Client()
    staff.force_login(make_staff(library, [Permission.CONFIGURE_LIBRARY]))
    response = staff.post("/staff/admin/clients/new/", {**DATA, "allowed_networks": "", "protocols": []})
    assert response.status_code == 400
    page = response.content.decode()
    assert 'href="#f-allowed_networks"' in page
    assert "Choose one or more of the protocols" in page


def test_another_librarys_client_is_not_found_and_staff_without_the_permission_are_refused(
    library: Library, kiosk: tuple[ProtocolClient, str]
) -> None:
    client, _ = kiosk
    south = make_library("south")
    other = Client()
    other.force_login(make_staff(south, [Permission.CONFIGURE_LIBRARY]))
    assert other.get(f"/staff/admin/clients/{client.pk}/").status_code == 404
    assert other.post(f"/staff/admin/clients/{client.pk}/reset-secret/", {"confirm": "yes"}).status_code == 404
    desk = Client()
    desk.force_login(make_staff(library, [Permission.VIEW_PATRONS]))
    assert desk.get("/staff/admin/clients/").status_code == 403


def test_resetting_on_the_page_asks_first_then_shows_the_new_secret_once(
    library: Library, kiosk: tuple[ProtocolClient, str]
) -> None:
    client, old = kiosk
    staff = Client()
    staff.force_login(make_staff(library, [Permission.CONFIGURE_LIBRARY]))
    assert (
        "Reset the secret of Kiosk 2?" in staff.get(f"/staff/admin/clients/{client.pk}/reset-secret/").content.decode()
    )
    page = staff.post(f"/staff/admin/clients/{client.pk}/reset-secret/", {"confirm": "yes"}).content.decode()
    new = re.search(r'value="(pcs_[^"]+)"', page)
    assert new is not None
    assert new.group(1) != old
    assert AuditEvent.objects.filter(action="protocol_client.secret_reset").count() == 1


def test_administrators_choose_the_interlibrary_loan_center_and_period_on_the_page(
    library: Library, kiosk: tuple[ProtocolClient, str]
) -> None:
    client, _ = kiosk
    center = make_branch(library, "ill-desk", name="ILL desk")
    center.is_checkout_center = True
    center.save(update_fields=["is_checkout_center"])
    make_branch(library, "stacks", name="Closed stacks")  # lends nothing: not offered
    staff = Client()
    staff.force_login(make_staff(library, [Permission.CONFIGURE_LIBRARY]))
    form = staff.get(f"/staff/admin/clients/{client.pk}/").content.decode()
    assert ">ILL desk</option>" in form
    assert "Closed stacks" not in form

    bad = staff.post(f"/staff/admin/clients/{client.pk}/", {**DATA, "ill_center": str(center.pk), "ill_loan_days": "0"})
    assert bad.status_code == 400
    assert "from 1 to 365" in bad.content.decode()
    staff.post(f"/staff/admin/clients/{client.pk}/", {**DATA, "ill_center": str(center.pk), "ill_loan_days": "21"})
    client.refresh_from_db()
    assert (client.ill_center_id, client.ill_loan_days) == (center.pk, 21)


def test_a_right_secret_after_wrong_guesses_starts_the_count_again(
    kiosk: tuple[ProtocolClient, str], settings: Any
) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 100
    _, secret = kiosk
    for _ in range(2):
        with pytest.raises(clients.ClientAuthenticationFailed):
            clients.authenticate_client("sip2", "kiosk-2", "pcs_guess", "192.0.2.5")
    clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.5")
    for _ in range(2):  # two more wrong guesses: not locked, the right secret cleared the first two
        with pytest.raises(clients.ClientAuthenticationFailed):
            clients.authenticate_client("sip2", "kiosk-2", "pcs_guess", "192.0.2.5")
    assert clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.5").login == "kiosk-2"


def test_a_usual_sign_in_writes_nothing_but_its_audit_row(kiosk: tuple[ProtocolClient, str]) -> None:
    # NCIP signs its client in on every request: no lock-out bookkeeping when nothing was counted.
    _, secret = kiosk
    clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.5")  # first use: records last_used_at
    with CaptureQueriesContext(connection) as queries:
        clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.5")
    writes = [q["sql"] for q in queries.captured_queries if not q["sql"].lstrip().upper().startswith("SELECT")]
    assert len(writes) == 1
    assert writes[0].startswith("INSERT INTO")
    assert "auditevent" in writes[0]


# --- reading client credentials from the Authorization header (the REST endpoints and NCIP) -------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", None),
        ("   ", None),
        ("Basic " + _b64("kiosk-2:pcs_x"), ("kiosk-2", "pcs_x")),
        ("basic " + _b64("kiosk-2:pcs:x"), ("kiosk-2", "pcs:x")),  # the secret keeps its colons
        ("Bearer pcs_x", ("", "pcs_x")),
        (b"Bearer pcs_x", ("", "pcs_x")),  # as DRF hands the header over
    ],
)
def test_client_credentials_come_from_basic_or_bearer(header: str | bytes, expected: tuple[str, str] | None) -> None:
    assert clients.credentials_from_header(header) == expected


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic", clients.AUTHORIZATION_FORM),
        ("Bearer pcs_x extra", clients.AUTHORIZATION_FORM),
        ("Token abc", clients.AUTHORIZATION_FORM),
        ("Basic not*base64", "The Authorization header is not valid base64 of login:secret."),
        ("Bearer pcs_\u00e9", "The Authorization header is not valid base64 of login:secret."),
        ("Basic " + _b64("kiosk-2:"), "Send both the client login and its secret."),
        ("Basic " + _b64(":pcs_x"), "Send both the client login and its secret."),
    ],
)
def test_a_malformed_header_is_refused_with_how_to_send_it(header: str, message: str) -> None:
    with pytest.raises(clients.MalformedCredentials) as refused:
        clients.credentials_from_header(header)
    assert str(refused.value) == message


def test_another_scheme_is_left_to_other_sign_ins_where_there_are_some() -> None:
    assert clients.credentials_from_header("Token abc", other_schemes=True) is None
    with pytest.raises(clients.MalformedCredentials):
        clients.credentials_from_header("Basic", other_schemes=True)


def test_a_caller_may_leave_a_good_sign_in_to_its_own_audit_event(kiosk: tuple[ProtocolClient, str]) -> None:
    _, secret = kiosk
    clients.authenticate_client("sip2", "kiosk-2", secret, "192.0.2.5", audit_success=False)
    assert not AuditEvent.objects.filter(action="protocol_client.authenticate").exists()
    with pytest.raises(clients.ClientAuthenticationFailed):  # a refusal is recorded all the same
        clients.authenticate_client("sip2", "kiosk-2", "pcs_guess", "192.0.2.5", audit_success=False)
    assert _outcome() == "wrong_secret"


# --- SIP2 account settings: the patron PIN requirement and the extension fields --------------------------------


def test_a_new_client_requires_patron_pins_and_sends_every_extension_field(kiosk: tuple[ProtocolClient, str]) -> None:
    client, _ = kiosk
    client.refresh_from_db()
    assert client.patron_pin_required is True
    assert client.sip2_extension_fields == ["PA", "PC", "XI"]
    created = AuditEvent.objects.get(action="protocol_client.create").detail
    assert (created["patron_pin_required"], created["sip2_extension_fields"]) == (True, ["PA", "PC", "XI"])


@pytest.mark.parametrize(
    ("given", "stored"),
    [(["XI", "PA"], ["PA", "XI"]), ("PC, XI", ["PC", "XI"]), ([], []), ("", []), (("PC", "PC"), ["PC"])],
)
def test_extension_fields_are_stored_in_their_fixed_order(library: Library, given: Any, stored: list[str]) -> None:
    client, _ = clients.create_client(actor=SYSTEM, library=library, data={**DATA, "sip2_extension_fields": given})
    client.refresh_from_db()
    assert client.sip2_extension_fields == stored


def test_leaving_the_sip2_settings_out_of_an_update_keeps_them(kiosk: tuple[ProtocolClient, str]) -> None:
    client, _ = kiosk
    clients.update_client(
        actor=SYSTEM, client=client,
        data={**DATA, "patron_pin_required": False, "sip2_extension_fields": ["PC"]},
    )  # fmt: skip
    clients.update_client(actor=SYSTEM, client=client, data={**DATA, "name": "Kiosk 2, main hall"})
    client.refresh_from_db()
    assert (client.name, client.patron_pin_required, client.sip2_extension_fields) == (
        "Kiosk 2, main hall", False, ["PC"],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"sip2_extension_fields": ["PA", "ZZ"]}, "sip2_extension_fields", ["'ZZ'", "PA, PC, XI"]),
        ({"sip2_extension_fields": "pa"}, "sip2_extension_fields", ["'pa'", "PA, PC, XI"]),
        ({"sip2_extension_fields": [1]}, "sip2_extension_fields", ["'1'", "PA, PC, XI"]),
        ({"sip2_extension_fields": {"PA": True}}, "sip2_extension_fields", ["list", "PA, PC, XI"]),
        ({"patron_pin_required": "maybe"}, "patron_pin_required", ["yes or no"]),
        ({"patron_pin_required": None}, "patron_pin_required", ["yes or no"]),
    ],
)
def test_bad_sip2_settings_get_a_field_message_and_write_nothing(
    library: Library, kiosk: tuple[ProtocolClient, str], change: dict[str, Any], field: str, words: list[str]
) -> None:
    client, _ = kiosk
    with pytest.raises(ValidationFailed) as caught:
        clients.create_client(actor=SYSTEM, library=library, data={**DATA, "name": "Vendor", "login": "v", **change})
    assert set(caught.value.errors) == {field}
    for word in words:
        assert word in caught.value.errors[field][0]
    assert ProtocolClient.objects.count() == 1
    with pytest.raises(ValidationFailed):
        clients.update_client(actor=SYSTEM, client=client, data={**DATA, **change})
    client.refresh_from_db()
    assert (client.patron_pin_required, client.sip2_extension_fields) == (True, ["PA", "PC", "XI"])
    assert not AuditEvent.objects.filter(action="protocol_client.update").exists()


def test_administrators_set_the_pin_requirement_and_extension_fields_on_the_page(library: Library) -> None:
    staff = Client()
    staff.force_login(make_staff(library, [Permission.CONFIGURE_LIBRARY]))
    form = staff.get("/staff/admin/clients/new/").content.decode()
    assert re.search(r'name="patron_pin_required" value="1" checked', form)  # on unless the librarian says so
    for code in ("PA", "PC", "XI"):
        assert re.search(rf'name="sip2_extension_fields" value="{code}" checked', form)
    assert "Patrons must give their PIN (SIP2)" in form

    staff.post("/staff/admin/clients/new/", {**DATA, "enabled": "on", "charset": "cp850",
                                              "sip2_extension_fields": ["PC"]})  # fmt: skip
    created = ProtocolClient.objects.get()
    assert (created.patron_pin_required, created.sip2_extension_fields) == (False, ["PC"])  # unticked: off
    assert "SIP2 without patron PIN" in staff.get("/staff/admin/clients/").content.decode()

    edit = staff.get(f"/staff/admin/clients/{created.pk}/").content.decode()
    assert not re.search(r'name="patron_pin_required" value="1" checked', edit)
    assert re.search(r'name="sip2_extension_fields" value="PC" checked', edit)
    assert not re.search(r'name="sip2_extension_fields" value="XI" checked', edit)

    bad = staff.post(f"/staff/admin/clients/{created.pk}/", {**DATA, "sip2_extension_fields": ["PC", "BD"]})
    assert bad.status_code == 400
    assert 'href="#f-sip2_extension_fields"' in bad.content.decode()
    assert "Choose any of PA, PC, XI" in bad.content.decode()

    staff.post(f"/staff/admin/clients/{created.pk}/", {**DATA, "enabled": "on", "patron_pin_required": "1",
                                                       "sip2_extension_fields": ["PA", "XI"]})  # fmt: skip
    created.refresh_from_db()
    assert (created.patron_pin_required, created.sip2_extension_fields) == (True, ["PA", "XI"])
    assert "SIP2 without patron PIN" not in staff.get("/staff/admin/clients/").content.decode()
