"""The lending API: catalog, center rules, availability, reservations and authorizations."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from patronage.core import clock
from patronage.libraries.permissions import Permission
from patronage.reservations.models import CenterPolicy, Reservation
from patronage.resources.models import Authorization, Resource, ResourceType
from patronage.resources.tests.builders import NOW, make_lab
from tests.factories import make_library

from .test_api import api_for

pytestmark = pytest.mark.django_db

DESK = [Permission.VIEW_PATRONS, Permission.CHECK_OUT]


@pytest.fixture(autouse=True)
def frozen() -> Any:
    with clock.frozen(NOW):
        yield NOW


@pytest.fixture
def lab() -> SimpleNamespace:
    return make_lab(make_library("lend", name="Lending library"))


def reservation_body(lab: SimpleNamespace, **extra: Any) -> dict[str, Any]:
    return {
        "patron": lab.patron.pk, "center": lab.center.pk, "starts_at": "2027-05-04T10:00",
        "ends_at": "2027-05-04T12:00", "lines": [{"resource": lab.laptop.pk}], **extra,
    }  # fmt: skip


def test_catalog_is_managed_with_manage_resources(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    status, body, _ = desk.call("post", "/api/v1/resource-types/", {"library": "lend", "name": "Drones"})
    assert status == 404  # no library where the caller manages resources
    manager = api_for(lab.library, [Permission.MANAGE_RESOURCES], username="manager")
    status, body, _ = manager.call(
        "post", "/api/v1/resource-types/",
        {"library": "lend", "name": "Gaming laptops", "parent": lab.laptops.pk, "centers": [lab.center.pk],
         "buffer_after_minutes": 30},
    )  # fmt: skip
    assert status == 201, body
    assert (body["parent"], body["centers"], body["buffer_after_minutes"]) == (lab.laptops.pk, [lab.center.pk], 30)
    status, body, _ = manager.call(
        "patch", f"/api/v1/resource-types/{body['id']}/", {"name": "Laptops", "parent": None}
    )
    assert status == 400
    assert "already a type called" in body["errors"]["name"][0]
    status, body, _ = manager.call(
        "post", "/api/v1/resources/",
        {"library": "lend", "identifier": "LAP-3", "name": "Third", "resource_type": lab.laptops.pk,
         "center": lab.center.pk, "accessories": "Charger"},
    )  # fmt: skip
    assert status == 201, body
    status, body, _ = manager.call("patch", f"/api/v1/resources/{body['id']}/", {"identifier": "LAP-1"})
    assert status == 400
    assert body["code"] == "invalid"
    status, body, _ = manager.call("get", "/api/v1/resources/", {"resource_type": lab.laptops.pk})
    assert [r["identifier"] for r in body["results"]] == ["LAP-1", "LAP-2", "LAP-3"]


def test_out_of_service_lists_the_reservations_it_breaks(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    made = desk.call("post", "/api/v1/reservations/", reservation_body(lab))[1]
    manager = api_for(lab.library, [Permission.MANAGE_RESOURCES], username="manager")
    status, body, _ = manager.call("post", f"/api/v1/resources/{lab.laptop.pk}/service/", {"in_service": False})
    assert status == 200, body
    assert body["affected_reservations"] == [made["id"]]
    assert body["resource"]["out_of_service_from"] is not None
    status, body, _ = manager.call("get", "/api/v1/resources/", {"in_service": "false"})
    assert [r["identifier"] for r in body["results"]] == ["LAP-1"]
    assert manager.call("post", f"/api/v1/resources/{lab.laptop.pk}/service/", {"in_service": True})[0] == 200


def test_center_policy_read_and_update(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    status, body, _ = desk.call("get", f"/api/v1/centers/{lab.center.pk}/policy/")
    assert (status, body["min_lead_minutes"], body["desk_pickup"]) == (200, 0, True)
    assert desk.call("patch", f"/api/v1/centers/{lab.center.pk}/policy/", {"min_lead_minutes": 60})[0] == 403
    admin = api_for(lab.library, [Permission.CONFIGURE_LIBRARY], username="admin")
    status, body, _ = admin.call(
        "patch", f"/api/v1/centers/{lab.center.pk}/policy/",
        {"title_required": True, "open_hours": {"mon": [["09:00", "17:00"]]}, "delivery_locations": ["Room 1"]},
    )  # fmt: skip
    assert status == 200, body
    assert body["open_hours"] == {"mon": [["09:00", "17:00"]]}
    assert CenterPolicy.objects.get(center=lab.center).title_required
    status, body, _ = admin.call("patch", f"/api/v1/centers/{lab.center.pk}/policy/", {"open_hours": {"mon": "x"}})
    assert status == 400
    assert "open_hours" in body["errors"]


def test_reservations_create_refuse_with_every_reason_and_change_state(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    status, made, _ = desk.call("post", "/api/v1/reservations/", reservation_body(lab, title="Film class"))
    assert status == 201, made
    assert (made["state"], made["channel"], made["lines"][0]["resource"]) == ("reserved", "api", lab.laptop.pk)
    assert made["starts_at"].startswith("2027-05-04T10:00:00-04:00") or made["starts_at"] == "2027-05-04T14:00:00Z"
    CenterPolicy.objects.create(center=lab.center, title_required=True)
    status, body, response = desk.call("post", "/api/v1/reservations/", reservation_body(lab))
    assert status == 409
    assert response["Content-Type"] == "application/problem+json"
    assert {r["code"] for r in body["reasons"]} == {"title_required", "resource_booked"}
    assert Reservation.objects.count() == 1
    status, body, _ = desk.call("post", "/api/v1/reservations/", reservation_body(lab, override_comment="ok"))
    assert status == 403  # override needs its permission
    status, body, _ = desk.call("patch", f"/api/v1/reservations/{made['id']}/", {"title": "Other"})
    assert (status, body["code"]) == (409, "not_editable")
    status, body, _ = desk.call("post", f"/api/v1/reservations/{made['id']}/approve/", {})
    assert (status, body["code"]) == (409, "transition_not_allowed")
    status, body, _ = desk.call("post", f"/api/v1/reservations/{made['id']}/cancel/", {"comment": "ill"})
    assert (status, body["state"]) == (200, "cancelled")
    assert [e["to_state"] for e in body["events"]] == ["reserved", "cancelled"]
    status, body, _ = desk.call("get", "/api/v1/reservations/", {"state": "cancelled", "center": lab.center.pk})
    assert [r["id"] for r in body["results"]] == [made["id"]]


def test_pending_reservations_are_edited_approved_or_rejected(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    ids = [desk.call("post", "/api/v1/reservations/", reservation_body(lab, starts_at=f"2027-05-0{d}T10:00",
           ends_at=f"2027-05-0{d}T12:00"))[1]["id"] for d in (5, 6)]  # fmt: skip
    Reservation.objects.filter(pk__in=ids).update(state="pending_approval")
    status, body, _ = desk.call(
        "patch", f"/api/v1/reservations/{ids[0]}/",
        {"lines": [{"resource_type": lab.laptops.pk, "quantity": 2}], "title": "Two"},
    )  # fmt: skip
    assert status == 200, body
    assert body["lines"] == [{"resource": None, "resource_type": lab.laptops.pk, "quantity": 2}]
    assert desk.call("post", f"/api/v1/reservations/{ids[0]}/approve/", {})[1]["state"] == "reserved"
    status, body, _ = desk.call("post", f"/api/v1/reservations/{ids[1]}/reject/", {})
    assert status == 400
    assert desk.call("post", f"/api/v1/reservations/{ids[1]}/reject/", {"comment": "No"})[1]["state"] == "rejected"
    listed = desk.call("get", "/api/v1/reservations/", {"from": "2027-05-05T00:00:00-04:00"})[1]["results"]
    assert [r["id"] for r in listed] == ids


def test_availability_counts_units_and_says_why_not(lab: SimpleNamespace) -> None:
    desk = api_for(lab.library, DESK, username="desk")
    desk.call("post", "/api/v1/reservations/", reservation_body(lab))
    query = {"center": lab.center.pk, "start": "2027-05-04T11:00", "end": "2027-05-04T13:00"}
    status, body, _ = desk.call("get", "/api/v1/availability/", query)
    assert status == 200, body
    assert body["types"] == [{"resource_type": lab.laptops.pk, "free_units": 1}]
    status, body, _ = desk.call(
        "get", "/api/v1/availability/", {**query, "resource_type": lab.laptops.pk, "resource": lab.laptop.pk}
    )
    assert body["types"][0]["free_resources"] == [lab.spare.pk]
    assert [r["code"] for r in body["why_not"]] == ["resource_booked"]
    status, body, _ = desk.call("get", "/api/v1/availability/", {**query, "end": "2027-05-04T10:00"})
    assert (status, list(body["errors"])) == (400, ["end"])


def test_authorizations_are_granted_and_revoked(lab: SimpleNamespace) -> None:
    manager = api_for(lab.library, [Permission.MANAGE_RESOURCES, Permission.VIEW_PATRONS], username="manager")
    url = f"/api/v1/patrons/{lab.patron.pk}/authorizations/"
    status, body, _ = manager.call("post", url, {"resource_type": lab.laptops.pk, "expires_on": "2027-12-31"})
    assert (status, body["expires_on"]) == (201, "2027-12-31")
    assert manager.call("get", url)[1][0]["resource_type"] == lab.laptops.pk
    assert manager.call("delete", f"{url}{lab.laptops.pk}/")[0] == 204
    assert not Authorization.objects.exists()
    status, body, _ = manager.call("delete", f"{url}{lab.laptops.pk}/")
    assert (status, body["code"]) == (409, "not_authorized")


def test_another_librarys_lending_objects_are_not_found(lab: SimpleNamespace) -> None:
    other = make_library("elsewhere")
    stranger = api_for(other, list(Permission), username="stranger")
    for url in (
        f"/api/v1/resource-types/{lab.laptops.pk}/",
        f"/api/v1/resources/{lab.laptop.pk}/",
        f"/api/v1/centers/{lab.center.pk}/policy/",
        f"/api/v1/patrons/{lab.patron.pk}/authorizations/",
    ):
        assert stranger.call("get", url)[0] == 404, url
    assert stranger.call("get", "/api/v1/resources/")[1]["results"] == []
    assert Resource.objects.count() == 2
    assert ResourceType.objects.count() == 1


def test_types_are_read_with_either_lending_permission(lab: SimpleNamespace) -> None:
    for permissions, name in (([Permission.CHECK_OUT], "desk"), ([Permission.MANAGE_RESOURCES], "manager")):
        api = api_for(lab.library, permissions, username=name)
        status, body, _ = api.call("get", "/api/v1/resource-types/", {"library": "lend"})
        assert (status, [t["name"] for t in body]) == (200, ["Laptops"])
        assert api.call("get", f"/api/v1/resource-types/{lab.laptops.pk}/")[0] == 200
    nobody = api_for(lab.library, [Permission.VIEW_PATRONS], username="viewer")
    assert nobody.call("get", "/api/v1/resource-types/", {"library": "lend"})[0] == 404
    assert nobody.call("get", f"/api/v1/resource-types/{lab.laptops.pk}/")[0] == 403
