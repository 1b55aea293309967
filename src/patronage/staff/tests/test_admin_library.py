"""The Administration section: its start page, library settings, branches and patron types."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from patronage.core.errors import ValidationFailed
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.libraries import services as library_services
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron, PatronType
from patronage.standing import services as standing_services
from patronage.standing.rules import Condition
from tests.factories import SYSTEM, make_branch, make_patron_type

from .conftest import StaffClient

pytestmark = pytest.mark.django_db

EVERYTHING_BUT_CONFIGURE = [p for p in Permission if p != Permission.CONFIGURE_LIBRARY]
SETTINGS = {"name": "Main Library", "currency": "USD", "time_zone": "America/New_York", "country": "US"}
BRANCH = {"code": "east", "name": "East branch", "email": "east@library.example.org", "is_checkout_center": "1"}
PATRON_TYPE = {
    "code": "student",
    "name": "Student",
    "fine_limit": "2.50",
    "expiry_months": "6",
    "loan_limit": "10",
    "may_use_ill": "1",
}


@pytest.fixture
def admin(staff_client: StaffClient) -> Client:
    return staff_client([Permission.CONFIGURE_LIBRARY])


def admin_url(name: str, **kwargs: Any) -> str:
    return reverse(f"staff:admin:{name}", kwargs=kwargs)


# --- who may use the pages ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("settings", SETTINGS),
        ("branches", None),
        ("branch-new", BRANCH),
        ("patron-types", None),
        ("patron-type-new", PATRON_TYPE),
    ],
)
def test_configuration_pages_need_configure_library(
    staff_client: StaffClient, library: Library, name: str, data: dict[str, str] | None
) -> None:
    client = staff_client(EVERYTHING_BUT_CONFIGURE)
    assert client.get(admin_url(name)).status_code == 403
    if data is not None:
        response = client.post(admin_url(name), {**data, "name": "Changed"})
        assert response.status_code == 403
        assert "Administration - Configure the library" in response.content.decode()
    assert not Branch.objects.filter(code="east").exists()
    assert not PatronType.objects.filter(code="student").exists()
    library.refresh_from_db()
    assert library.name == "Main Library"


def test_objects_of_another_library_are_not_found(admin: Client, other_library: Library) -> None:
    branch = make_branch(other_library, "far")
    patron_type = make_patron_type(other_library, "far")
    for url, data in (
        (admin_url("branch-edit", branch_id=branch.pk), BRANCH),
        (admin_url("patron-type-edit", type_id=patron_type.pk), PATRON_TYPE),
    ):
        assert admin.get(url).status_code == 404
        assert admin.post(url, data).status_code == 404
    branch.refresh_from_db()
    patron_type.refresh_from_db()
    assert (branch.code, patron_type.code) == ("far", "far")


def test_the_start_page_lists_what_the_roles_allow(staff_client: StaffClient) -> None:
    html = staff_client([Permission.CONFIGURE_LIBRARY]).get(admin_url("index")).content.decode()
    assert "Library settings" in html
    assert "Staff accounts" in html
    assert "My API tokens" in html
    assert "Audit log" not in html
    html = staff_client([Permission.VIEW_AUDIT_LOG]).get(admin_url("index")).content.decode()
    assert "Audit log" in html
    assert "Library settings" not in html


def test_the_menu_links_to_administration_only_with_its_permissions(staff_client: StaffClient) -> None:
    index = admin_url("index")
    desk = staff_client([Permission.VIEW_PATRONS]).get(reverse("staff:patron-list")).content.decode()
    assert f'href="{index}"' not in desk
    assert f'href="{admin_url("tokens")}"' in desk  # every staff member has their own API tokens
    for permission in (Permission.CONFIGURE_LIBRARY, Permission.VIEW_AUDIT_LOG):
        html = staff_client([Permission.VIEW_PATRONS, permission]).get(reverse("staff:patron-list")).content.decode()
        assert f'href="{index}"' in html


# --- library settings ---------------------------------------------------------------------------


def test_settings_are_saved_normalised_and_audited(admin: Client, library: Library) -> None:
    response = admin.post(
        admin_url("settings"),
        {"name": "  Main Public Library ", "currency": "eur", "time_zone": "europe/oslo", "country": "no"},
    )
    assert response.status_code == 302
    library.refresh_from_db()
    assert (library.name, library.currency, library.time_zone, library.country) == (
        "Main Public Library",
        "EUR",
        "Europe/Oslo",
        "NO",
    )
    event = AuditEvent.objects.get(action="library.updated")
    assert event.library_id == library.pk
    assert event.detail["fields"] == ["country", "currency", "name", "time_zone"]
    assert "Library settings saved." in admin.get(response["Location"]).content.decode()


def test_bad_settings_show_every_error_with_status_400_and_change_nothing(admin: Client, library: Library) -> None:
    response = admin.post(
        admin_url("settings"), {"name": "", "currency": "XYZ", "time_zone": "Mars/Olympus_Mons", "country": "ZZ"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("name", "currency", "time_zone", "country"):
        assert f'id="f-{field}-error"' in html
        assert f'href="#f-{field}"' in html
    assert "not an ISO 4217 currency code" in html
    assert "America/New_York or Europe/Oslo" in html
    assert 'value="Mars/Olympus_Mons"' in html  # what was typed is kept
    library.refresh_from_db()
    assert (library.currency, library.time_zone, library.country) == ("USD", "America/New_York", "US")
    assert not AuditEvent.objects.filter(action="library.updated").exists()


@pytest.mark.parametrize(("code", "expected"), [("KWD", "three decimal places"), ("BIF", "no decimal places")])
def test_currencies_the_ledger_cannot_hold_are_refused(library: Library, code: str, expected: str) -> None:
    with pytest.raises(ValidationFailed, match=expected):
        library_services.save_library(actor=SYSTEM, library=library, data={**SETTINGS, "currency": code})


def test_currencies_without_minor_units_are_accepted(library: Library) -> None:
    saved = library_services.save_library(actor=SYSTEM, library=library, data={**SETTINGS, "currency": "jpy"})
    assert saved.currency == "JPY"


# --- branches -----------------------------------------------------------------------------------


def test_a_branch_is_created_listed_edited_and_audited(admin: Client, library: Library) -> None:
    response = admin.post(admin_url("branch-new"), BRANCH)
    assert response.status_code == 302
    branch = Branch.objects.get(library=library, code="east")
    assert (branch.name, branch.is_checkout_center, branch.email) == ("East branch", True, BRANCH["email"])
    assert "East branch" in admin.get(admin_url("branches")).content.decode()

    edit = admin_url("branch-edit", branch_id=branch.pk)
    assert 'value="east"' in admin.get(edit).content.decode()
    # An unticked checkbox is not sent: the branch stops being a checkout center.
    assert admin.post(edit, {"code": "east", "name": "East side", "email": ""}).status_code == 302
    branch.refresh_from_db()
    assert (branch.name, branch.is_checkout_center, branch.email) == ("East side", False, "")
    actions = list(AuditEvent.objects.filter(library_id=library.pk).values_list("action", "detail"))
    assert ("branch.created", {"branch_id": branch.pk, "code": "east", "fields": sorted(BRANCH)}) in actions
    assert (
        "branch.updated",
        {"branch_id": branch.pk, "code": "east", "fields": ["email", "is_checkout_center", "name"]},
    ) in actions


def test_branch_codes_are_unique_per_library_only(admin: Client, library: Library, other_library: Library) -> None:
    make_branch(library, "east")
    make_branch(other_library, "west")
    response = admin.post(admin_url("branch-new"), {**BRANCH, "code": "east"})
    assert response.status_code == 400
    assert "Another branch of Main Library has the code" in response.content.decode()
    assert admin.post(admin_url("branch-new"), {**BRANCH, "code": "west"}).status_code == 302


def test_bad_branch_input_is_shown_next_to_the_fields(admin: Client, library: Library) -> None:
    response = admin.post(admin_url("branch-new"), {"code": "east side", "name": "", "email": "not-an-address"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Use letters, digits, &#x27;-&#x27; and &#x27;_&#x27; only" in html
    assert 'id="f-name-error"' in html
    assert "is not an e-mail address" in html
    assert not Branch.objects.filter(library=library).exists()


# --- patron types -------------------------------------------------------------------------------


def test_a_new_patron_type_form_starts_from_the_defaults(admin: Client) -> None:
    html = admin.get(admin_url("patron-type-new")).content.decode()
    assert 'value="5.00"' in html
    assert 'value="12"' in html


def test_a_patron_type_is_created_with_its_policy(admin: Client, library: Library) -> None:
    assert admin.post(admin_url("patron-type-new"), PATRON_TYPE).status_code == 302
    patron_type = PatronType.objects.get(library=library, code="student")
    assert patron_type.fine_limit == Decimal("2.50")
    assert (patron_type.expiry_months, patron_type.loan_limit) == (6, 10)
    assert (patron_type.may_use_ill, patron_type.may_self_update) == (True, False)
    event = AuditEvent.objects.get(action="patron_type.created")
    assert event.detail["patron_type_id"] == patron_type.pk
    html = admin.get(admin_url("patron-types")).content.decode()
    assert "Student" in html
    assert "2.50" in html


def test_bad_patron_type_input_is_refused_with_400(admin: Client, library: Library) -> None:
    make_patron_type(library, "adult")
    response = admin.post(
        admin_url("patron-type-new"),
        {"code": "adult", "name": "Adult again", "fine_limit": "2.505", "expiry_months": "0", "loan_limit": "many"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Another patron type of Main Library has the code" in html
    assert "USD amounts have at most 2 decimal places." in html
    assert "Enter a whole number from 1 to 1,200" in html
    assert "Enter a whole number from 0 to 10,000" in html
    assert PatronType.objects.filter(library=library).count() == 1


def test_a_lower_fine_limit_applies_at_once_to_the_types_patrons(
    admin: Client, library: Library, patron: Patron
) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="4.00")
    assert Condition.FINES_OVER_LIMIT not in standing_services.standing(patron).codes
    patron_type = patron.patron_type
    data = {
        "code": patron_type.code,
        "name": patron_type.name,
        "fine_limit": "3.00",
        "expiry_months": "12",
        "loan_limit": "",
        "may_self_update": "1",
    }
    assert admin.post(admin_url("patron-type-edit", type_id=patron_type.pk), data).status_code == 302
    assert Condition.FINES_OVER_LIMIT in standing_services.standing(patron).codes
    event = AuditEvent.objects.get(action="patron_type.updated")
    assert event.detail["fields"] == ["fine_limit"]


# --- lending history retention -------------------------------------------------------------------------------


def test_the_retention_period_is_shown_saved_and_audited(admin: Client, library: Library) -> None:
    form = admin.get(admin_url("settings")).content.decode()
    assert 'name="lending_history_retention_days"' in form
    assert 'value="365"' in form  # a new library's default
    response = admin.post(admin_url("settings"), {**SETTINGS, "lending_history_retention_days": " 730 "})
    assert response.status_code == 302
    library.refresh_from_db()
    assert library.lending_history_retention_days == 730
    assert AuditEvent.objects.get(action="library.updated").detail["fields"] == ["lending_history_retention_days"]
    admin.post(admin_url("settings"), {**SETTINGS, "lending_history_retention_days": ""})
    library.refresh_from_db()
    assert library.lending_history_retention_days is None  # empty: keep forever


@pytest.mark.parametrize("value", ["0", "3651", "-5", "1.5", "a year"])
def test_a_bad_retention_period_is_refused_with_a_field_message(admin: Client, library: Library, value: str) -> None:
    response = admin.post(admin_url("settings"), {**SETTINGS, "lending_history_retention_days": value})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="f-lending_history_retention_days-error"' in html
    assert 'href="#f-lending_history_retention_days"' in html
    assert "from 1 to 3,650" in html
    library.refresh_from_db()
    assert library.lending_history_retention_days == 365
    assert not AuditEvent.objects.filter(action="library.updated").exists()


@pytest.mark.parametrize("value", ["1", "3650"])
def test_the_retention_period_bounds_are_accepted(library: Library, value: str) -> None:
    saved = library_services.save_library(
        actor=SYSTEM, library=library, data={**SETTINGS, "lending_history_retention_days": value}
    )
    assert saved.lending_history_retention_days == int(value)
