"""The lending pages: catalog, center rules, authorizations, reservations and availability."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from django.urls import reverse

from patronage.blocks import services as blocks
from patronage.circulation import services as desk
from patronage.core import clock
from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from patronage.reservations import services as reservations
from patronage.reservations.models import CenterPolicy, Reservation
from patronage.resources import services as catalog
from patronage.resources.models import Authorization, Resource, ResourceType
from patronage.resources.tests.builders import NOW, make_center, make_resource, make_type
from tests.factories import SYSTEM

from .conftest import StaffClient

pytestmark = pytest.mark.django_db

DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT]


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"staff:lending:{name}", kwargs=kwargs)


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):
        yield NOW


def book(lab: SimpleNamespace, day: int = 4, **kwargs: Any) -> Reservation:
    lines = kwargs.pop("lines", [{"resource": lab.laptop.pk}])
    return reservations.create_reservation(
        actor=SYSTEM, patron=lab.patron, center=lab.center, starts_at=f"2027-05-{day:02d}T10:00",
        ends_at=f"2027-05-{day:02d}T12:00", lines=lines, **kwargs,
    )  # fmt: skip


# --- who may use the pages ----------------------------------------------------------------------------


def test_catalog_pages_need_manage_resources(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client(DESK)
    for name in ("types", "type-new", "resources", "resource-new"):
        assert client.get(url(name)).status_code == 403
    assert client.post(url("type-new"), {"name": "Drones"}).status_code == 403
    assert client.get(url("resource-edit", resource_id=lab.laptop.pk)).status_code == 403
    assert not ResourceType.objects.filter(name="Drones").exists()


def test_the_menu_shows_lending_only_with_its_permissions(staff_client: StaffClient) -> None:
    assert "Lending" not in staff_client([Permission.VIEW_PATRONS]).get(reverse("staff:patron-list")).content.decode()
    assert "Lending" in staff_client(DESK).get(reverse("staff:patron-list")).content.decode()


def test_objects_of_another_library_are_not_found(
    staff_client: StaffClient, lab: SimpleNamespace, other_library: Library
) -> None:
    far = make_center(other_library, "far")
    kind = make_type(other_library, "Far type", centers=[far])
    item = make_resource(other_library, kind, far)
    client = staff_client()
    for address in (
        url("type-edit", resource_type_id=kind.pk),
        url("resource-edit", resource_id=item.pk),
        url("resource-service", resource_id=item.pk),
        url("policy", center_id=far.pk),
    ):
        assert client.get(address).status_code == 404, address
        assert client.post(address, {"name": "x"}).status_code == 404, address
    assert client.get(url("center", center_id=far.pk)).status_code == 404


# --- catalog --------------------------------------------------------------------------------------------


def test_create_a_subtype_with_buffers_and_centers(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client([Permission.MANAGE_RESOURCES])
    data = {
        "name": "Gaming laptops", "parent": str(lab.laptops.pk), "requires_authorization": "1",
        "visible_in_portal": "1", "buffer_before_minutes": "15", "buffer_after_minutes": "30",
        "centers": [str(lab.center.pk)],
    }  # fmt: skip
    response = client.post(url("type-new"), data)
    assert response.status_code == 302
    kind = ResourceType.objects.get(name="Gaming laptops")
    assert (kind.parent, kind.requires_authorization, kind.buffer_after_minutes) == (lab.laptops, True, 30)
    assert list(kind.centers.all()) == [lab.center]
    page = client.get(url("types")).content.decode()
    assert page.index("<td>Laptops</td>") < page.index("Gaming laptops</td>")


def test_bad_type_input_is_shown_next_to_the_field(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client([Permission.MANAGE_RESOURCES])
    response = client.post(url("type-new"), {"name": "Laptops", "buffer_before_minutes": "soon"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "already a type called" in text
    assert "Enter whole minutes" in text
    assert 'value="soon"' in text


def test_resources_are_created_edited_and_filtered(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client([Permission.MANAGE_RESOURCES])
    data = {
        "identifier": "CAM-7", "name": "Camera kit", "resource_type": str(lab.laptops.pk),
        "center": str(lab.center.pk), "accessories": "Bag, charger", "condition_notes": "Scratch on lid",
    }  # fmt: skip
    assert client.post(url("resource-new"), data).status_code == 302
    kit = Resource.objects.get(identifier="CAM-7")
    assert kit.accessories == "Bag, charger"
    edit = {**data, "identifier": "LAP-1", "contained_in": str(kit.pk)}
    response = client.post(url("resource-edit", resource_id=lab.spare.pk), edit)
    assert response.status_code == 400
    assert "has the identifier LAP-1" in response.content.decode()
    edit["identifier"] = "LAP-2"
    assert client.post(url("resource-edit", resource_id=lab.spare.pk), edit).status_code == 302
    lab.spare.refresh_from_db()
    assert lab.spare.contained_in == kit
    catalog.take_out_of_service(actor=SYSTEM, resource=lab.laptop)
    listed = client.get(url("resources"), {"status": "out_of_service"}).content.decode()
    assert "<code>LAP-1</code>" in listed
    assert "<code>LAP-2</code>" not in listed
    listed = client.get(url("resources"), {"status": "in_service", "center": lab.center.pk}).content.decode()
    assert "<code>LAP-1</code>" not in listed
    assert "<code>CAM-7</code>" in listed


def test_taking_out_of_service_shows_the_bookings_affected(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    made = book(lab)
    client = staff_client([Permission.MANAGE_RESOURCES])
    page = client.get(url("resource-service", resource_id=lab.laptop.pk)).content.decode()
    assert f"Reservation {made.pk}" in page
    response = client.post(url("resource-service", resource_id=lab.laptop.pk), {"from_": "2027-05-04T09:00"})
    assert response.status_code == 302
    lab.laptop.refresh_from_db()
    assert lab.laptop.out_of_service_from == dt.datetime(2027, 5, 4, 13, 0, tzinfo=dt.UTC)
    page = client.get(response["Location"]).content.decode()
    assert "1 open reservation(s) hold it" in page
    assert f"Reservation {made.pk}" in page
    assert client.post(url("resource-service", resource_id=lab.laptop.pk), {"return": "yes"}).status_code == 302
    lab.laptop.refresh_from_db()
    assert lab.laptop.out_of_service_from is None


def test_center_rules_need_configure_library(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    assert staff_client([Permission.MANAGE_RESOURCES]).get(url("policy", center_id=lab.center.pk)).status_code == 403
    client = staff_client([Permission.CONFIGURE_LIBRARY])
    data = {
        "min_lead_minutes": "60", "max_duration_minutes": "", "max_open_reservations": "3",
        "approval_required": "1", "desk_pickup": "1", "delivery_locations": "Room 101\nRoom 102",
        "series_horizon_days": "90", "series_max_occurrences": "10", "no_show_minutes": "30",
        "open_hours": '{"mon": [["09:00", "17:00"]]}',
    }  # fmt: skip
    assert client.post(url("policy", center_id=lab.center.pk), data).status_code == 302
    policy = CenterPolicy.objects.get(center=lab.center)
    assert (policy.min_lead_minutes, policy.approval_required, policy.title_required) == (60, True, False)
    assert policy.delivery_locations == ["Room 101", "Room 102"]
    assert policy.open_hours == {"mon": [["09:00", "17:00"]]}
    response = client.post(
        url("policy", center_id=lab.center.pk), {**data, "open_hours": "{nope", "min_lead_minutes": "x"}
    )
    assert response.status_code == 400
    assert "as JSON" in response.content.decode()


def test_grant_and_revoke_an_authorization(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client([Permission.MANAGE_RESOURCES, Permission.VIEW_PATRONS])
    page = url("authorizations", patron_id=lab.patron.pk)
    response = client.post(page, {"resource_type": str(lab.laptops.pk), "expires_on": "2027-12-31"})
    assert response.status_code == 302
    held = Authorization.objects.get(patron=lab.patron)
    assert held.expires_on == dt.date(2027, 12, 31)
    assert "2027-12-31" in client.get(page).content.decode()
    assert client.post(page, {"resource_type": str(lab.laptops.pk), "expires_on": "2020-01-01"}).status_code == 400
    revoke = url("authorization-revoke", patron_id=lab.patron.pk, resource_type_id=lab.laptops.pk)
    assert client.post(revoke).status_code == 302
    assert not Authorization.objects.exists()
    assert AuditEvent.objects.filter(action="authorization.revoked").count() == 1


# --- reservations -----------------------------------------------------------------------------------------


def new_reservation(lab: SimpleNamespace, **extra: str) -> dict[str, str]:
    return {
        "patron": str(lab.patron.pk), "center": str(lab.center.pk), "starts_at": "2027-05-04T10:00",
        "ends_at": "2027-05-04T12:00", "pickup_option": "desk", "lines.0.resource": str(lab.laptop.pk), **extra,
    }  # fmt: skip


def test_desk_staff_reserve_for_a_patron_in_the_centers_time(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client(DESK)
    response = client.post(url("reservation-new"), new_reservation(lab, title="Film class"))
    assert response.status_code == 302
    made = Reservation.objects.get()
    assert made.starts_at == dt.datetime(2027, 5, 4, 14, 0, tzinfo=dt.UTC)  # 10:00 in New York
    assert (made.state, made.channel, made.title) == ("reserved", "staff", "Film class")
    detail = client.get(response["Location"]).content.decode()
    assert "Laptop one" in detail
    assert "Film class" in detail


def test_a_refusal_lists_every_reason_and_the_free_alternatives(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    book(lab)
    CenterPolicy.objects.create(center=lab.center, title_required=True)
    client = staff_client(DESK)
    response = client.post(url("reservation-new"), new_reservation(lab))
    assert response.status_code == 409
    text = response.content.decode()
    assert "title_required" in text
    assert "resource_booked" in text
    assert "Free instead" in text
    assert "Laptop two" in text
    assert Reservation.objects.count() == 1


def test_staff_with_the_override_permission_override_with_a_comment(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    CenterPolicy.objects.create(center=lab.center, title_required=True)
    assert "Override comment" not in staff_client(DESK).get(url("reservation-new")).content.decode()
    client = staff_client([*DESK, Permission.OVERRIDE_RESERVATION_RULES])
    response = client.post(url("reservation-new"), new_reservation(lab, override_comment="Staff meeting"))
    assert response.status_code == 302
    made = Reservation.objects.get()
    assert (made.overridden, made.override_comment) == (["title_required"], "Staff meeting")


def test_bad_input_and_unknown_patrons_are_shown_on_the_form(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    client = staff_client(DESK)
    response = client.post(url("reservation-new"), new_reservation(lab, patron="NO-SUCH", starts_at="soon"))
    assert response.status_code == 400
    assert "No patron here has the barcode" in response.content.decode()
    response = client.post(url("reservation-new"), new_reservation(lab, starts_at="soon"))
    assert response.status_code == 400
    assert "Give a date and time" in response.content.decode()


def test_approve_reject_cancel_and_edit(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    pending = book(lab, channel="portal")
    Reservation.objects.filter(pk=pending.pk).update(state="pending_approval")
    client = staff_client(DESK)
    listing = client.get(url("center", center_id=lab.center.pk)).content.decode()
    assert "Pending approval" in listing
    edit = client.post(
        url("reservation-edit", reservation_id=pending.pk),
        {"starts_at": "2027-05-04T11:00", "ends_at": "2027-05-04T12:00", "pickup_option": "desk",
         "lines.0.resource_type": str(lab.laptops.pk), "lines.0.quantity": "2"},
    )  # fmt: skip
    assert edit.status_code == 302
    pending.refresh_from_db()
    assert pending.starts_at == dt.datetime(2027, 5, 4, 15, 0, tzinfo=dt.UTC)
    assert client.post(url("reservation-reject", reservation_id=pending.pk), {"comment": ""}).status_code == 400
    assert client.post(url("reservation-approve", reservation_id=pending.pk), {}).status_code == 302
    pending.refresh_from_db()
    assert pending.state == "reserved"
    again = client.post(url("reservation-approve", reservation_id=pending.pk), {})
    assert again.status_code == 302  # a conflict with the state: a message on the reservation's page
    assert "cannot be approved" in client.get(again["Location"]).content.decode()
    assert client.post(url("reservation-cancel", reservation_id=pending.pk), {"comment": "ill"}).status_code == 302
    pending.refresh_from_db()
    assert pending.state == "cancelled"
    history = client.get(url("reservation", reservation_id=pending.pk)).content.decode()
    assert "ill" in history
    assert "pending_approval" in history


def test_the_center_list_filters_by_state_and_date(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    early, late = book(lab, 4), book(lab, 6)
    client = staff_client(DESK)
    page = client.get(url("center", center_id=lab.center.pk), {"date_from": "2027-05-05"}).content.decode()
    assert f">{late.pk}<" in page
    assert f">{early.pk}<" not in page
    reservations.cancel_reservation(actor=SYSTEM, reservation=early)
    page = client.get(url("center", center_id=lab.center.pk), {"state": "cancelled"}).content.decode()
    assert f">{early.pk}<" in page
    assert f">{late.pk}<" not in page
    assert client.get(url("center", center_id=lab.center.pk), {"date_to": "May"}).status_code == 200


def test_availability_counts_units_lists_free_resources_and_says_why_not(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    book(lab)
    client = staff_client(DESK)
    span = {"center": lab.center.pk, "starts_at": "2027-05-04T11:00", "ends_at": "2027-05-04T13:00"}
    page = client.get(url("availability"), span).content.decode()
    assert "Laptops" in page
    page = client.get(url("availability"), {**span, "resource_type": lab.laptops.pk}).content.decode()
    assert "1 unit(s) free" in page
    assert "Laptop two" in page
    page = client.get(url("availability"), {**span, "resource": lab.laptop.pk}).content.decode()
    assert "resource_booked" in page
    assert client.get(url("availability"), {**span, "ends_at": "2027-05-04T10:00"}).status_code == 400


def test_an_approval_refused_by_standing_lists_the_reasons_and_may_be_overridden(
    staff_client: StaffClient, lab: SimpleNamespace
) -> None:
    pending = book(lab)
    Reservation.objects.filter(pk=pending.pk).update(state="pending_approval")
    blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="Lost card")
    response = staff_client(DESK).post(url("reservation-approve", reservation_id=pending.pk), {})
    assert response.status_code == 409
    assert "blocked_by_staff" in response.content.decode()
    pending.refresh_from_db()
    assert pending.state == "pending_approval"
    client = staff_client([*DESK, Permission.OVERRIDE_RESERVATION_RULES])
    approve = url("reservation-approve", reservation_id=pending.pk)
    assert "Override comment" in client.get(url("reservation", reservation_id=pending.pk)).content.decode()
    assert client.post(approve, {"override_comment": "Card found"}).status_code == 302
    pending.refresh_from_db()
    assert (pending.state, pending.override_comment) == ("reserved", "Card found")


def test_the_patron_page_links_to_reserving_and_authorizations(staff_client: StaffClient, patron: Patron) -> None:
    detail = reverse("staff:patron-detail", kwargs={"pk": patron.pk})
    page = staff_client([Permission.VIEW_PATRONS]).get(detail).content.decode()
    assert "Resource authorizations" not in page
    page = staff_client([*DESK, Permission.MANAGE_RESOURCES]).get(detail).content.decode()
    assert f"{url('reservation-new')}?patron={patron.pk}" in page
    assert url("authorizations", patron_id=patron.pk) in page


# --- anonymised history ----------------------------------------------------------------------------------------


def test_an_anonymised_reservation_still_shows(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    made = book(lab, title="Hopper family visit")
    reservations.cancel_reservation(actor=SYSTEM, reservation=made, comment="Grace is ill")
    with clock.frozen(NOW + dt.timedelta(days=400)):
        assert desk.run_job("anonymise_history") == [made.pk]
    client = staff_client(DESK)
    page = client.get(url("reservation", reservation_id=made.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Anonymised patron" in html
    assert "Hopper" not in html
    assert "Grace" not in html
    listing = client.get(url("center", center_id=lab.center.pk), {"date_from": "2027-05-01"}).content.decode()
    assert "Anonymised patron" in listing


def test_reservation_times_read_as_the_library_wall_clock(staff_client: StaffClient, lab: SimpleNamespace) -> None:
    # 10:00 to 12:00 in New York is 14:00 to 16:00 UTC in May; staff must see the times the patron booked.
    reservation = book(lab)
    page = staff_client(DESK).get(url("reservation", reservation_id=reservation.pk)).content.decode()
    assert "2027-05-04 10:00" in page
    assert "2027-05-04 12:00" in page
    assert "14:00" not in page
