"""Update my details through the portal, the staff verification queue and options page, and the REST API."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from patronage.api.tokens import create_token
from patronage.libraries.models import Branch, Library
from patronage.libraries.permissions import Permission
from patronage.outbox.models import OutboxMessage
from patronage.patrons.models import Patron
from patronage.updates import services
from patronage.updates.models import AccessOptions, PostalCode, UpdateRequest
from tests.factories import SYSTEM, make_library, make_patron, make_patron_type, make_staff

from .conftest import sign_in

pytestmark = pytest.mark.django_db
PAGE = "/portal/north/my-details/"
FORM = {
    "primary_email": "grace@example.org", "alternate_email": "g.hopper@example.net", "phone_mobile": "",
    "phone_home": "", "phone_work": "", "address_line1": "", "address_line2": "", "address_city": "",
    "address_region": "", "address_postal_code": "", "address_country": "", "notification_method": "email",
}  # fmt: skip


def _staff(library: Library, *perms: Permission) -> Client:
    client = Client()
    client.force_login(make_staff(library, perms or [Permission.VIEW_PATRONS, Permission.EDIT_PATRON]))
    return client


def _api(library: Library, *perms: Permission) -> dict[str, Any]:
    user = make_staff(library, perms or [Permission.VIEW_PATRONS, Permission.EDIT_PATRON, Permission.CONFIGURE_LIBRARY])
    return {"HTTP_AUTHORIZATION": f"Bearer {create_token(user=user, name='t', expires_at=None)[1]}"}


# --- portal ---------------------------------------------------------------------------------------------------


def test_the_dashboard_menu_leads_to_update_my_details(portal: Client) -> None:
    assert PAGE in portal.get("/portal/north/").content.decode()


def test_a_requested_change_shows_as_waiting_for_the_library(portal: Client, patron: Patron) -> None:
    response = portal.post(PAGE, {**FORM, "primary_email": "grace.new@example.org"})
    assert response.status_code == 302
    page = portal.get(PAGE).content.decode()
    assert "Waiting for the library" in page
    assert "grace.new@example.org" in page
    assert Patron.objects.get(pk=patron.pk).primary_email == "grace@example.org"
    dashboard = portal.get("/portal/north/").content.decode()
    assert "verification_pending" in dashboard


def test_a_direct_change_applies_and_a_refusal_names_the_field(portal: Client, patron: Patron) -> None:
    services.save_options(actor=SYSTEM, library=patron.library, branch=None, data={"phone_change": "direct"})
    # A US library with phone validation on: three inputs per phone (see test_phones.py for the rest).
    bad = portal.post(
        PAGE, {**FORM, "phone_mobile_area": "12", "phone_mobile_prefix": "555", "phone_mobile_line": "0188"}
    )
    assert bad.status_code == 400
    page = bad.content.decode()
    assert 'href="#f-phone_mobile_area"' in page
    assert 'aria-invalid="true"' in page
    good = {**FORM, "phone_mobile_area": "202", "phone_mobile_prefix": "555", "phone_mobile_line": "0188"}
    assert portal.post(PAGE, good).status_code == 302
    assert patron.phones.get().number == "+12025550188"


def test_a_field_not_changeable_online_offers_no_input(portal: Client, patron: Patron) -> None:
    services.save_options(actor=SYSTEM, library=patron.library, branch=None, data={"address_change": "off"})
    page = portal.get(PAGE).content.decode()
    assert 'name="address_line1"' not in page
    assert "does not let you change this online" in page
    # A forged post of the field changes nothing.
    portal.post(PAGE, {**FORM, "address_line1": "1 Forged Way", "address_city": "Nowhere"})
    assert not patron.addresses.exists()
    assert not UpdateRequest.objects.exists()


def test_a_patron_type_not_allowed_sees_why(library: Library, main: Branch) -> None:
    from patronage.credentials import services as credentials

    kids = make_patron_type(library, "kids", name="Children", may_self_update=False)
    child = make_patron(library, person_id="K-1", patron_type=kids.pk, registered_branch=main.pk)
    credentials.set_password(child, "plum-orchard-41-lantern", actor=SYSTEM)
    client = sign_in(Client(), "K-1")
    page = client.get(PAGE).content.decode()
    assert "cannot change details online" in page
    assert "Children" in page
    assert client.post(PAGE, {**FORM, "notification_method": "sms"}).status_code == 403


def test_a_visitor_sees_the_connection_branch_options(library: Library, main: Branch, east: Branch) -> None:
    services.save_options(actor=SYSTEM, library=library, branch=east, data={"email_change": "direct"})
    page = Client().get(PAGE + "?branch=east").content.decode()
    assert "at East" in page
    assert "changes apply at once" in page
    assert "changes apply at once" not in Client().get(PAGE).content.decode()


def test_a_patron_never_sees_another_patrons_request(portal: Client, patron: Patron, library: Library) -> None:
    other = make_patron(library, registered_branch=patron.registered_branch_id)
    request = services.submit_details(
        actor=SYSTEM, patron=other, data={"primary_email": "other.new@example.org"}
    ).request
    assert request is not None
    assert "other.new@example.org" not in portal.get(PAGE).content.decode()
    # Nor can the patron resolve it: the staff routes want a staff sign-in.
    response = portal.post(f"/staff/update-requests/{request.pk}/verify/")
    assert response.status_code == 302
    assert "/login/" in response["Location"]
    assert UpdateRequest.objects.get(pk=request.pk).state == "pending"


# --- staff --------------------------------------------------------------------------------------------------------


def test_staff_verify_from_the_queue(patron: Patron, library: Library) -> None:
    request = services.submit_details(
        actor=SYSTEM, patron=patron, data={"primary_email": "grace.new@example.org"}
    ).request
    assert request is not None
    staff = _staff(library)
    queue = staff.get("/staff/update-requests/").content.decode()
    assert "grace@example.org" in queue
    assert "grace.new@example.org" in queue
    detail = staff.get(f"/staff/patrons/{patron.pk}/").content.decode()
    assert f"update request {request.pk}" in detail
    assert staff.post(f"/staff/update-requests/{request.pk}/verify/").status_code == 302
    assert Patron.objects.get(pk=patron.pk).primary_email == "grace.new@example.org"


def test_staff_reject_needs_a_reason(patron: Patron, library: Library) -> None:
    request = services.submit_details(
        actor=SYSTEM, patron=patron, data={"primary_email": "grace.new@example.org"}
    ).request
    assert request is not None
    staff = _staff(library)
    refused = staff.post(f"/staff/update-requests/{request.pk}/reject/", {"reason": ""})
    assert refused.status_code == 400
    assert 'href="#f-reason"' in refused.content.decode()
    assert staff.post(f"/staff/update-requests/{request.pk}/reject/", {"reason": "Typo?"}).status_code == 302
    assert UpdateRequest.objects.get(pk=request.pk).state == "rejected"
    portal = sign_in(Client())
    assert "Typo?" in portal.get(PAGE).content.decode()


def test_staff_without_edit_permission_cannot_resolve(patron: Patron, library: Library) -> None:
    request = services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "x@example.org"}).request
    assert request is not None
    viewer = _staff(library, Permission.VIEW_PATRONS)
    assert viewer.post(f"/staff/update-requests/{request.pk}/verify/").status_code == 403
    assert UpdateRequest.objects.get(pk=request.pk).state == "pending"


def test_the_options_page_shows_each_value_and_its_source(library: Library, main: Branch) -> None:
    admin = _staff(library, Permission.CONFIGURE_LIBRARY)
    response = admin.post(f"/staff/admin/updates/branches/{main.pk}/", {"email_change": "direct"})
    assert response.status_code == 302
    page = admin.get(f"/staff/admin/updates/branches/{main.pk}/").content.decode()
    assert "branch Main" in page
    assert "system default" in page
    bad = admin.post("/staff/admin/updates/", {"phone_change": "sometimes"})
    assert bad.status_code == 400
    assert 'href="#f-phone_change"' in bad.content.decode()
    upload = SimpleUploadedFile("codes.csv", b"postal_code,city\n22201,Arlington\n", content_type="text/csv")
    assert admin.post("/staff/admin/updates/postal-codes/", {"file": upload}).status_code == 302
    assert PostalCode.objects.filter(library=library, code="22201").exists()


# --- API -----------------------------------------------------------------------------------------------------------


def test_the_api_lists_reads_verifies_and_rejects(patron: Patron, library: Library) -> None:
    first = services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "one@example.org"}).request
    assert first is not None
    auth = _api(library)
    client = Client()
    listed = client.get("/api/v1/update-requests/?library=north", **auth).json()
    assert [r["id"] for r in listed["results"]] == [first.pk]
    read = client.get(f"/api/v1/update-requests/{first.pk}/", **auth).json()
    assert read["new"] == {"primary_email": "one@example.org"}
    assert client.post(f"/api/v1/update-requests/{first.pk}/verify/", **auth).json()["state"] == "verified"
    again = client.post(f"/api/v1/update-requests/{first.pk}/reject/", {"reason": "late"}, "application/json", **auth)
    assert again.status_code == 409
    assert again["Content-Type"].startswith("application/problem+json")
    second = services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "two@example.org"}).request
    assert second is not None
    blank = client.post(f"/api/v1/update-requests/{second.pk}/reject/", {"reason": ""}, "application/json", **auth)
    assert blank.status_code == 400
    assert "reason" in str(blank.json())
    done = client.post(f"/api/v1/update-requests/{second.pk}/reject/", {"reason": "No"}, "application/json", **auth)
    assert done.json()["state"] == "rejected"
    assert OutboxMessage.objects.filter(kind="update_request_rejected").count() == 1


def test_the_api_reads_and_changes_options_and_imports_postal_codes(library: Library, main: Branch) -> None:
    auth = _api(library)
    client = Client()
    changed = client.patch(
        f"/api/v1/access-options/?library=north&branch={main.pk}", {"address_change": "direct"}, "application/json",
        **auth,
    )  # fmt: skip
    assert changed.status_code == 200
    assert changed.json()["sources"]["address_change"] == "branch Main"
    assert AccessOptions.objects.get(branch=main).address_change == "direct"
    bad = client.patch("/api/v1/access-options/?library=north", {"email_change": "maybe"}, "application/json", **auth)
    assert bad.status_code == 400
    assert "email_change" in str(bad.json())
    imported = client.post(
        "/api/v1/postal-codes/", {"library": "north", "codes": [{"code": "22201", "city": "Arlington"}]},
        "application/json", **auth,
    )  # fmt: skip
    assert imported.json()["created"] == 1
    listed = client.get("/api/v1/postal-codes/?library=north", **auth).json()
    assert [r["code"] for r in listed["results"]] == ["22201"]


def test_the_api_answers_not_found_for_another_librarys_request(patron: Patron) -> None:
    request = services.submit_details(actor=SYSTEM, patron=patron, data={"primary_email": "x@example.org"}).request
    assert request is not None
    stranger = _api(make_library("south"))
    response = Client().post(f"/api/v1/update-requests/{request.pk}/verify/", **stranger)
    assert response.status_code == 404
    assert UpdateRequest.objects.get(pk=request.pk).state == "pending"
