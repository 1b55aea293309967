"""Phone validation on and off (the system setting PATRONAGE_PHONE_VALIDATION), through every face.

On: numbers are parsed with phonenumbers for the library's country and stored in E.164; a library in a
North American country gets three inputs per phone in the portal. Off: a number is kept as typed (one
input), refusing only what cannot be stored or read. Pages show numbers in the national format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from patronage.api.tokens import create_token
from patronage.core.audit import Actor
from patronage.core.errors import FieldError, ValidationFailed
from patronage.credentials import services as credentials
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons import services as patron_services
from patronage.patrons.importer import import_patrons
from patronage.patrons.models import Patron, Phone
from patronage.patrons.validation import (
    PhonePartsError,
    clean_phone,
    compose_nanp,
    display_phone,
    nanp_parts,
    uses_three_part_entry,
)
from patronage.updates import services
from patronage.updates.models import UpdateRequest
from tests.factories import SYSTEM, make_branch, make_library, make_patron, make_patron_type, make_staff

from .conftest import SECRET

pytestmark = pytest.mark.django_db
PAGE = "/portal/north/my-details/"
FORM = {
    "primary_email": "grace@example.org", "alternate_email": "g.hopper@example.net", "address_line1": "",
    "address_line2": "", "address_city": "", "address_region": "", "address_postal_code": "",
    "address_country": "", "notification_method": "email",
}  # fmt: skip
NO_PHONES = {f"phone_{kind}": "" for kind in ("mobile", "home", "work")}


def _parts(kind: str, area: str, prefix: str, line: str) -> dict[str, str]:
    return {f"phone_{kind}_area": area, f"phone_{kind}_prefix": prefix, f"phone_{kind}_line": line}


def _mode(library: Library, mode: str) -> None:
    services.save_options(actor=SYSTEM, library=library, branch=None, data={"phone_change": mode})


def _numbers(patron: Patron) -> dict[str, str]:
    return dict(Phone.objects.filter(patron=patron).values_list("kind", "number"))


def _staff(library: Library) -> Client:
    client = Client()
    client.force_login(make_staff(library, [Permission.VIEW_PATRONS, Permission.EDIT_PATRON]))
    return client


def _tag(page: str, element_id: str) -> str:
    found = re.search(rf'<(?:input|fieldset)[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
    assert found is not None, f"no element #{element_id}"
    return found.group(0)


# --- the rule itself (no database) -----------------------------------------------------------------------


def test_with_validation_on_a_number_is_parsed_for_the_library_country_and_stored_in_e164() -> None:
    assert clean_phone(" (202) 555-0143 ", "US", validate=True) == "+12025550143"
    assert clean_phone("412 34 567", "NO", validate=True) == "+4741234567"
    with pytest.raises(FieldError, match="not a valid phone number for US"):
        clean_phone("12", "US", field="phone_home", validate=True)


@pytest.mark.parametrize(
    "typed", ["1 (555) 555-0123", "12", "1-800-FLOWERS", "555 0123 ext. 42 (ask for Ann)", "+47 412 34 567"]
)
def test_with_validation_off_a_number_is_kept_as_typed(typed: str) -> None:
    assert clean_phone(f"  {typed} ", "US", validate=False) == typed


@pytest.mark.parametrize(
    ("typed", "fix"),
    [
        ("555\t0123", "invisible character"),
        ("555 0123\n", None),  # trailing whitespace is trimmed, not refused
        ("555\u202e0123", "invisible character"),
        ("555\x000123", "invisible character"),
        ("ring the bell", "digits"),
        ("1" * 33, "at most 32"),
    ],
)
def test_with_validation_off_only_what_cannot_be_stored_or_read_is_refused(typed: str, fix: str | None) -> None:
    if fix is None:
        assert clean_phone(typed, "US", validate=False) == typed.strip()
        return
    with pytest.raises(FieldError, match=fix) as refused:
        clean_phone(typed, "US", field="phone_work", validate=False)
    assert refused.value.field == "phone_work"


def test_north_american_countries_use_three_part_entry() -> None:
    assert [uses_three_part_entry(c) for c in ("US", "CA", "JM", "pr")] == [True] * 4
    assert [uses_three_part_entry(c) for c in ("NO", "GB", "MX")] == [False] * 3


def test_three_parts_compose_one_number_and_each_wrong_part_is_named() -> None:
    assert compose_nanp({"area": " 202", "prefix": "555 ", "line": "0143"}) == "(202) 555-0143"
    assert compose_nanp({"area": "", "prefix": "", "line": ""}) == ""
    with pytest.raises(PhonePartsError) as refused:
        compose_nanp({"area": "2o2", "prefix": "5555", "line": "0143"}, field="phone_home")
    assert refused.value.parts == ["area", "prefix"]
    assert refused.value.errors == {
        "phone_home": [
            "The area code is 3 digits, e.g. 202; you entered '2o2'.",
            "The prefix is 3 digits, e.g. 555; you entered '5555'.",
        ]
    }
    with pytest.raises(PhonePartsError) as missing:
        compose_nanp(
            {"area": "202", "prefix": "", "line": "\uff11\uff12\uff13\uff14"}
        )  # full-width digits are not digits here
    assert missing.value.parts == ["prefix", "line"]
    assert "Enter the prefix" in missing.value.messages[0]


def test_a_stored_number_splits_into_three_parts_only_when_it_is_north_american() -> None:
    assert nanp_parts("+12025550143") == {"area": "202", "prefix": "555", "line": "0143"}
    assert nanp_parts("+4741234567") is None
    assert nanp_parts("555 0123 ask for Ann") is None


def test_numbers_show_in_the_national_format_and_text_as_typed() -> None:
    assert display_phone("+12025550143", "US") == "(202) 555-0143"
    assert display_phone("+12045550143", "US") == "(204) 555-0143"  # Canada: the same plan
    assert display_phone("+4741234567", "US") == "+47 41 23 45 67"
    assert display_phone("+4741234567", "NO") == "41 23 45 67"
    assert display_phone("1 (555) 555-0123", "US") == "1 (555) 555-0123"
    assert display_phone("+1 202 555 0143", "US") == "+1 202 555 0143"  # typed so while validation was off
    assert display_phone("", "US") == ""


# --- the portal: direct changes ----------------------------------------------------------------------------


def test_portal_with_validation_on_in_the_us_offers_three_numeric_inputs_in_a_fieldset(portal: Client) -> None:
    page = portal.get(PAGE).content.decode()
    group = _tag(page, "f-phone_mobile")
    assert group.startswith("<fieldset")
    assert re.search(r'<fieldset[^>]*id="f-phone_mobile"[^>]*>\s*<legend>Mobile phone</legend>', page)
    for part, label in (("area", "Area code"), ("prefix", "Prefix"), ("line", "Line number")):
        tag = _tag(page, f"f-phone_mobile_{part}")
        assert 'inputmode="numeric"' in tag
        assert f'name="phone_mobile_{part}"' in tag
        assert f'<label for="f-phone_mobile_{part}">{label}</label>' in page
    assert 'name="phone_mobile"' not in page


def test_portal_three_parts_are_stored_in_e164_and_shown_split_again(portal: Client, patron: Patron) -> None:
    _mode(patron.library, "direct")
    response = portal.post(PAGE, {**FORM, **_parts("mobile", "202", "555", "0188"), **_parts("home", "", "", "")})
    assert response.status_code == 302
    assert _numbers(patron) == {"mobile": "+12025550188"}
    page = portal.get(PAGE).content.decode()
    assert 'value="202"' in _tag(page, "f-phone_mobile_area")
    assert 'value="0188"' in _tag(page, "f-phone_mobile_line")
    # Sent back unchanged, the same number is no change at all.
    portal.post(PAGE, {**FORM, **_parts("mobile", "202", "555", "0188")})
    assert not UpdateRequest.objects.exists()
    # All three emptied removes the number.
    assert portal.post(PAGE, {**FORM, **_parts("mobile", "", "", "")}).status_code == 302
    assert _numbers(patron) == {}


@pytest.mark.parametrize(
    ("parts", "bad", "message"),
    [
        (("2o2", "555", "0188"), {"area"}, "The area code is 3 digits"),
        (("202", "55", "0188"), {"prefix"}, "The prefix is 3 digits"),
        (("202", "555", "01888"), {"line"}, "The line number is 4 digits"),
        (("202", "", "0188"), {"prefix"}, "Enter the prefix"),
        (("abc", "def", "ghij"), {"area", "prefix", "line"}, "The area code is 3 digits"),
    ],
)
def test_portal_refuses_wrong_parts_on_the_group_and_writes_nothing(
    portal: Client, patron: Patron, parts: tuple[str, str, str], bad: set[str], message: str
) -> None:
    services.save_options(
        actor=SYSTEM, library=patron.library, branch=None, data={"phone_change": "direct", "email_change": "direct"}
    )
    posted = {**FORM, "primary_email": "grace.new@example.org", **_parts("mobile", *parts)}
    response = portal.post(PAGE, posted)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page
    group = _tag(page, "f-phone_mobile")
    assert "f-phone_mobile-error-1" in group  # the fieldset is described by its errors
    for part in ("area", "prefix", "line"):
        tag = _tag(page, f"f-phone_mobile_{part}")
        assert ('aria-invalid="true"' in tag) == (part in bad)
        assert "f-phone_mobile-error-1" in tag
    first = next(p for p in ("area", "prefix", "line") if p in bad)
    assert f'<a href="#f-phone_mobile_{first}">' in page  # the error summary leads to the first part to fix
    assert f'value="{parts[0]}"' in _tag(page, "f-phone_mobile_area")  # what was typed stays
    patron.refresh_from_db()
    assert patron.primary_email == "grace@example.org"  # the e-mail change (direct) was not made either
    assert _numbers(patron) == {}


def test_portal_wrong_parts_and_other_errors_show_together(portal: Client, patron: Patron) -> None:
    services.save_options(
        actor=SYSTEM, library=patron.library, branch=None, data={"phone_change": "direct", "email_change": "direct"}
    )
    response = portal.post(PAGE, {**FORM, "primary_email": "not-an-address", **_parts("work", "20", "555", "0188")})
    assert response.status_code == 400
    page = response.content.decode()
    assert '<a href="#f-phone_work_area">' in page
    assert '<a href="#f-primary_email">' in page


def test_portal_three_parts_that_are_no_real_number_are_refused_on_the_whole_group(
    portal: Client, patron: Patron
) -> None:
    _mode(patron.library, "direct")
    response = portal.post(PAGE, {**FORM, **_parts("home", "123", "555", "0188")})  # no area code starts with 1
    assert response.status_code == 400
    page = response.content.decode()
    assert "not a valid phone number for US" in page
    assert all('aria-invalid="true"' in _tag(page, f"f-phone_home_{p}") for p in ("area", "prefix", "line"))
    assert '<a href="#f-phone_home_area">' in page
    assert _numbers(patron) == {}


def test_portal_keeps_one_input_for_a_number_of_another_country_on_record(portal: Client, patron: Patron) -> None:
    patron_services.set_phones(actor=SYSTEM, patron=patron, phones={"work": "+47 412 34 567"})
    page = portal.get(PAGE).content.decode()
    assert 'value="+47 41 23 45 67"' in _tag(page, "f-phone_work")
    assert "f-phone_mobile_area" in page  # the others are still three parts
    _mode(patron.library, "direct")
    assert portal.post(PAGE, {**FORM, "phone_work": "+47 41 23 45 67"}).status_code == 302
    assert _numbers(patron) == {"work": "+4741234567"}  # unchanged


def test_portal_outside_north_america_has_one_input_checked_by_phonenumbers(settings: Any) -> None:
    library = make_library("fjord", name="Fjord bibliotek", country="NO")
    branch = make_branch(library, "main", name="Main")
    patron = make_patron(library, person_id="N-1", first_name="Ingrid", registered_branch=branch.pk)
    credentials.set_password(patron, SECRET, actor=SYSTEM)
    _mode(library, "direct")
    client = Client()
    assert client.post("/portal/fjord/sign-in/", {"identifier": "N-1", "password": SECRET}).status_code == 302
    page = client.get("/portal/fjord/my-details/").content.decode()
    assert _tag(page, "f-phone_mobile").startswith("<input")
    assert "f-phone_mobile_area" not in page
    form = {k: v for k, v in FORM.items() if "email" not in k}
    bad = client.post("/portal/fjord/my-details/", {**form, **NO_PHONES, "phone_mobile": "555 0123"})
    assert bad.status_code == 400
    assert "not a valid phone number for NO" in bad.content.decode()
    assert (
        client.post("/portal/fjord/my-details/", {**form, **NO_PHONES, "phone_mobile": "412 34 567"}).status_code == 302
    )
    assert _numbers(patron) == {"mobile": "+4741234567"}
    assert 'value="41 23 45 67"' in _tag(client.get("/portal/fjord/my-details/").content.decode(), "f-phone_mobile")


def test_portal_with_validation_off_offers_one_input_and_keeps_the_number_as_typed(
    portal: Client, patron: Patron, settings: Any
) -> None:
    settings.PATRONAGE_PHONE_VALIDATION = False
    _mode(patron.library, "direct")
    page = portal.get(PAGE).content.decode()
    assert _tag(page, "f-phone_mobile").startswith("<input")
    assert "f-phone_mobile_area" not in page
    typed = "1 555 555 0123 ext 4"
    assert portal.post(PAGE, {**FORM, **NO_PHONES, "phone_mobile": f" {typed} "}).status_code == 302
    assert _numbers(patron) == {"mobile": typed}
    assert f'value="{typed}"' in _tag(portal.get(PAGE).content.decode(), "f-phone_mobile")
    bad = portal.post(PAGE, {**FORM, **NO_PHONES, "phone_home": "call the desk"})
    assert bad.status_code == 400
    assert '<a href="#f-phone_home">' in bad.content.decode()
    assert _numbers(patron) == {"mobile": typed}


def test_a_number_stored_while_validation_was_on_is_no_change_when_sent_back_with_it_off(
    portal: Client, patron: Patron, settings: Any
) -> None:
    patron_services.set_phones(actor=SYSTEM, patron=patron, phones={"home": "202 555 0143"})
    settings.PATRONAGE_PHONE_VALIDATION = False
    page = portal.get(PAGE).content.decode()
    assert 'value="(202) 555-0143"' in _tag(page, "f-phone_home")
    response = portal.post(PAGE, {**FORM, **NO_PHONES, "phone_home": "(202) 555-0143"})
    assert response.status_code == 302
    assert not UpdateRequest.objects.exists()
    assert _numbers(patron) == {"home": "+12025550143"}


# --- the portal's requests and the staff verification ---------------------------------------------------


def test_with_validation_off_a_requested_number_is_verified_as_typed(
    portal: Client, patron: Patron, settings: Any
) -> None:
    settings.PATRONAGE_PHONE_VALIDATION = False
    typed = "555-0123 (ask for Ann)"
    assert portal.post(PAGE, {**FORM, **NO_PHONES, "phone_work": typed}).status_code == 302
    request = UpdateRequest.objects.get()
    assert request.new == {"phones": {"work": typed}}
    staff = _staff(patron.library)
    shown = staff.get(f"/staff/update-requests/{request.pk}/").content.decode()
    assert f"<td>{typed}</td>" in shown
    assert staff.post(f"/staff/update-requests/{request.pk}/verify/").status_code == 302
    assert _numbers(patron) == {"work": typed}
    assert UpdateRequest.objects.get().state == UpdateRequest.State.VERIFIED


def test_a_typed_number_waiting_when_validation_is_turned_on_is_refused_on_verify_and_can_be_rejected(
    portal: Client, patron: Patron, settings: Any
) -> None:
    settings.PATRONAGE_PHONE_VALIDATION = False
    assert portal.post(PAGE, {**FORM, **NO_PHONES, "phone_home": "ext 12"}).status_code == 302
    request = UpdateRequest.objects.get()
    settings.PATRONAGE_PHONE_VALIDATION = True
    staff = _staff(patron.library)
    refused = staff.post(f"/staff/update-requests/{request.pk}/verify/")
    assert refused.status_code == 400
    assert "&#x27;ext 12&#x27; is not a valid phone number for US" in refused.content.decode()
    assert UpdateRequest.objects.get().state == UpdateRequest.State.PENDING
    assert _numbers(patron) == {}
    rejected = staff.post(f"/staff/update-requests/{request.pk}/reject/", {"reason": "Give the full number."})
    assert rejected.status_code == 302
    assert UpdateRequest.objects.get().state == UpdateRequest.State.REJECTED


def test_with_validation_on_a_requested_number_is_verified_in_e164_and_shown_national(
    portal: Client, patron: Patron
) -> None:
    assert portal.post(PAGE, {**FORM, **_parts("mobile", "202", "555", "0188")}).status_code == 302
    request = UpdateRequest.objects.get()
    assert request.new == {"phones": {"mobile": "+12025550188"}}
    assert "Mobile phone: (202) 555-0188" in portal.get(PAGE).content.decode()  # waiting for the library
    staff = _staff(patron.library)
    for url in ("/staff/update-requests/", f"/staff/update-requests/{request.pk}/"):
        assert "<td>(202) 555-0188</td>" in staff.get(url).content.decode()
    assert staff.post(f"/staff/update-requests/{request.pk}/verify/").status_code == 302
    assert _numbers(patron) == {"mobile": "+12025550188"}


# --- staff pages ----------------------------------------------------------------------------------------------


def _contact(staff: Client, patron: Patron, **phones: str) -> Any:
    return staff.post(
        f"/staff/patrons/{patron.pk}/edit/contact/",
        {"primary_email": patron.primary_email, "notification_method": "email", **phones},
    )


def test_staff_edits_follow_the_setting_and_the_record_shows_numbers_national_or_as_typed(
    patron: Patron, settings: Any
) -> None:
    staff = _staff(patron.library)
    assert _contact(staff, patron, phone_mobile="ext 12").status_code == 400
    assert _contact(staff, patron, phone_mobile="202 555 0143").status_code == 302
    settings.PATRONAGE_PHONE_VALIDATION = False
    assert _contact(staff, patron, phone_mobile="+12025550143", phone_home="ext 12 (front desk)").status_code == 302
    assert _numbers(patron) == {"mobile": "+12025550143", "home": "ext 12 (front desk)"}
    page = staff.get(f"/staff/patrons/{patron.pk}/").content.decode()
    assert "<dd>(202) 555-0143</dd>" in page
    assert "<dd>ext 12 (front desk)</dd>" in page
    refused = _contact(staff, patron, phone_work="no number")
    assert refused.status_code == 400
    assert "f-phone_work-error" in refused.content.decode()


# --- the REST API ------------------------------------------------------------------------------------------


def _api(library: Library) -> dict[str, Any]:
    user = make_staff(library, [Permission.VIEW_PATRONS, Permission.EDIT_PATRON])
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token(user=user, name='t', expires_at=None)[1]}"}


def _patch(patron: Patron, phones: dict[str, str]) -> tuple[int, Any]:
    response = Client().patch(
        f"/api/v1/patrons/{patron.pk}/", json.dumps({"phones": phones}), "application/json", **_api(patron.library)
    )
    return response.status_code, response.json()


def test_api_patch_follows_the_setting(patron: Patron, settings: Any) -> None:
    status, body = _patch(patron, {"home": "(202) 555-0147"})
    assert (status, body["phones"]) == (200, {"home": "+12025550147"})
    status, body = _patch(patron, {"work": "12"})
    assert status == 400
    assert "not a valid phone number for US" in body["errors"]["phone_work"][0]
    settings.PATRONAGE_PHONE_VALIDATION = False
    status, body = _patch(patron, {"work": "12 (night line)"})
    assert (status, body["phones"]) == (200, {"home": "+12025550147", "work": "12 (night line)"})
    status, body = _patch(patron, {"mobile": "no digits"})
    assert status == 400
    assert set(body["errors"]) == {"phone_mobile"}
    assert _numbers(patron) == {"home": "+12025550147", "work": "12 (night line)"}


# --- the CSV importer ------------------------------------------------------------------------------------------


def _import(tmp_path: Path, library: Library, rows: list[str], **options: Any) -> Any:
    path = tmp_path / "feed.csv"
    path.write_text("\n".join(["person_id,first_name,last_name,patron_type,branch,phone_mobile", *rows]) + "\n")
    return import_patrons(actor=Actor.cli(), library=library, path=path, keep_good_rows=True, **options)


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_importer_follows_the_setting(tmp_path: Path, library: Library, settings: Any, jobs: int) -> None:
    make_branch(library, "main")
    make_patron_type(library, "adult")
    rows = ["I1,Ada,Byron,adult,main,(312) 555-0142", "I2,Alan,Turing,adult,main,ext 42", "I3,Kurt,Gödel,adult,main,"]
    on = _import(tmp_path, library, rows, jobs=jobs, batch_size=1)
    assert [(p.line, p.column) for p in on.problems] == [(3, "phone_mobile")]
    assert dict(Phone.objects.values_list("patron__person_id", "number")) == {"I1": "+13125550142"}
    settings.PATRONAGE_PHONE_VALIDATION = False  # workers are fresh processes: the importer hands them the flag
    off = _import(tmp_path, library, [*rows[1:], "I4,Emmy,Noether,adult,main,call the desk"], jobs=jobs, batch_size=1)
    assert [(p.line, p.column) for p in off.problems] == [(4, "phone_mobile")]
    assert dict(Phone.objects.values_list("patron__person_id", "number")) == {"I1": "+13125550142", "I2": "ext 42"}


def test_the_setting_is_read_at_each_call(patron: Patron, settings: Any) -> None:
    """No face caches it: turning validation off takes effect at once, for the services every face uses."""
    settings.PATRONAGE_PHONE_VALIDATION = False
    assert services.phone_validation() is False
    assert patron_services.clean_phones(patron.library, {"home": " 42 "}) == {"home": "42"}
    settings.PATRONAGE_PHONE_VALIDATION = True
    assert services.for_patron(patron).phone_validation is True
    with pytest.raises(ValidationFailed, match="phone_home"):
        patron_services.clean_phones(patron.library, {"home": "42"})
