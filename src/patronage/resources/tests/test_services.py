from __future__ import annotations

import datetime as dt

import pytest

from patronage.core import clock
from patronage.core.errors import Conflict, FieldError, NotFound, PermissionDenied, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries.permissions import Permission
from patronage.reservations import services as reservations
from patronage.resources import access
from patronage.resources import services as catalog
from patronage.resources.models import Authorization, Resource
from patronage.resources.tests.builders import NOW, at, make_center, make_resource, make_type
from tests.factories import SYSTEM, actor, make_branch, make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def frozen_now():
    with clock.frozen(NOW):
        yield


@pytest.fixture
def library():
    return make_library()


@pytest.fixture
def center(library):
    return make_center(library)


def test_a_type_tree_with_names_unique_under_one_parent(library, center) -> None:
    cameras = make_type(library, "Cameras", centers=[center], requires_authorization=True)
    dslr = make_type(library, "DSLR", centers=[center], parent=cameras.pk, buffer_after_minutes="15")
    assert (dslr.parent, dslr.buffer_after_minutes) == (cameras, 15)
    make_type(library, "DSLR", centers=[center])  # the same name at the top level is another place
    with pytest.raises(ValidationFailed) as refused:
        make_type(library, "dslr", centers=[center], parent=cameras.pk)
    assert "already a type called" in refused.value.errors["name"][0]
    with pytest.raises(ValidationFailed) as refused:
        make_type(library, "Cameras", centers=[center])
    assert "at the top level" in refused.value.errors["name"][0]
    assert AuditEvent.objects.filter(action="resource_type.created").count() == 3


def test_a_type_cannot_sit_under_its_own_subtype(library, center) -> None:
    top = make_type(library, "Top", centers=[center])
    below = make_type(library, "Below", centers=[center], parent=top.pk)
    with pytest.raises(ValidationFailed) as refused:
        catalog.save_resource_type(actor=SYSTEM, library=library, resource_type=top, data={"parent": below.pk})
    assert "under itself" in refused.value.errors["parent"][0]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"name": ""}, "name", "required"),
        ({"name": "X", "buffer_before_minutes": "-5"}, "buffer_before_minutes", "whole minutes"),
        ({"name": "X", "buffer_after_minutes": "99999"}, "buffer_after_minutes", "whole minutes"),
        ({"name": "X", "parent": "999999"}, "parent", "Unknown resource type"),
        ({"name": "X", "centers": ["999999"]}, "centers", "Unknown branch"),
    ],
)
def test_bad_type_values_say_what_to_fix(library, data, field, message) -> None:
    with pytest.raises(ValidationFailed) as refused:
        catalog.save_resource_type(actor=SYSTEM, library=library, data=data)
    assert message in refused.value.errors[field][0]


def test_only_checkout_centers_lend_types(library) -> None:
    plain = make_branch(library, "plain")
    with pytest.raises(ValidationFailed) as refused:
        make_type(library, "Tripods", centers=[plain])
    assert "not a checkout center" in refused.value.errors["centers"][0]


def test_a_center_with_resources_of_the_type_stays_on_its_list(library, center) -> None:
    kind = make_type(library, "Tripods", centers=[center])
    make_resource(library, kind, center)
    with pytest.raises(ValidationFailed) as refused:
        catalog.save_resource_type(actor=SYSTEM, library=library, resource_type=kind, data={"centers": []})
    assert "move them to another center" in refused.value.errors["centers"][0]


def test_resources_have_unique_identifiers_and_live_where_their_type_is_lent(library, center) -> None:
    other = make_center(library, "other")
    kind = make_type(library, "Tripods", centers=[center])
    make_resource(library, kind, center, identifier="TRI-1")
    with pytest.raises(ValidationFailed) as refused:
        make_resource(library, kind, center, identifier="TRI-1")
    assert "has the identifier" in refused.value.errors["identifier"][0]
    with pytest.raises(ValidationFailed) as refused:
        make_resource(library, kind, other)
    assert "does not lend Tripods" in refused.value.errors["center"][0]
    with pytest.raises(ValidationFailed) as refused:
        make_resource(library, kind, center, identifier="bad id!")
    assert "identifier is 1 to 64" in refused.value.errors["identifier"][0]


def test_kits_hold_parts_at_their_own_center_and_never_themselves(library, center) -> None:
    other = make_center(library, "other")
    kind = make_type(library, "Kits", centers=[center, other])
    kit = make_resource(library, kind, center)
    part = make_resource(library, kind, center, contained_in=kit.pk)
    assert list(kit.parts.all()) == [part]
    with pytest.raises(ValidationFailed) as refused:
        catalog.save_resource(actor=SYSTEM, library=library, resource=kit, data={"contained_in": part.pk})
    assert "part of itself" in refused.value.errors["contained_in"][0]
    with pytest.raises(ValidationFailed) as refused:
        make_resource(library, kind, other, contained_in=kit.pk)
    assert "another center" in refused.value.errors["contained_in"][0]


def test_taking_out_of_service_reports_the_reservations_it_breaks(library, center) -> None:
    kind = make_type(library, "Laptops", centers=[center])
    laptop = make_resource(library, kind, center)
    patron = make_patron(library)
    booked = reservations.create_reservation(
        actor=SYSTEM, patron=patron, center=center, starts_at=at(10, 10), ends_at=at(10, 12),
        lines=[{"resource": laptop.pk}],
    )  # fmt: skip
    assert catalog.take_out_of_service(actor=SYSTEM, resource=laptop, comment="Cracked screen") == [booked.pk]
    laptop.refresh_from_db()
    assert laptop.out_of_service_from == NOW
    with pytest.raises(Conflict):
        catalog.take_out_of_service(actor=SYSTEM, resource=laptop)
    catalog.return_to_service(actor=SYSTEM, resource=laptop)
    with pytest.raises(Conflict):
        catalog.return_to_service(actor=SYSTEM, resource=laptop)
    assert AuditEvent.objects.get(action="resource.out_of_service").detail["affected_reservations"] == [booked.pk]


def test_a_booked_resource_cannot_move_to_another_type_or_center(library, center) -> None:
    other = make_center(library, "other")
    kind = make_type(library, "Laptops", centers=[center, other])
    laptop = make_resource(library, kind, center)
    reservations.create_reservation(
        actor=SYSTEM, patron=make_patron(library), center=center, starts_at=at(10, 10), ends_at=at(10, 12),
        lines=[{"resource": laptop.pk}],
    )  # fmt: skip
    with pytest.raises(Conflict) as refused:
        catalog.save_resource(actor=SYSTEM, library=library, resource=laptop, data={"center": other.pk})
    assert refused.value.code == "resource_has_reservations"
    renamed = catalog.save_resource(actor=SYSTEM, library=library, resource=laptop, data={"name": "Laptop 7"})
    assert renamed.name == "Laptop 7"


def test_authorizations_are_granted_renewed_and_revoked(library, center) -> None:
    kind = make_type(library, "3D printers", centers=[center], requires_authorization=True)
    patron = make_patron(library)
    first = catalog.grant_authorization(actor=SYSTEM, patron=patron, resource_type=kind, expires_on="2027-12-31")
    assert first.expires_on == dt.date(2027, 12, 31)
    again = catalog.grant_authorization(actor=SYSTEM, patron=patron, resource_type=kind)
    assert (again.pk, again.expires_on) == (first.pk, None)
    with pytest.raises(FieldError, match="has passed"):
        catalog.grant_authorization(actor=SYSTEM, patron=patron, resource_type=kind, expires_on="2027-05-02")
    with pytest.raises(FieldError, match="YYYY-MM-DD"):
        catalog.grant_authorization(actor=SYSTEM, patron=patron, resource_type=kind, expires_on="soon")
    catalog.revoke_authorization(actor=SYSTEM, patron=patron, resource_type=kind)
    assert not Authorization.objects.exists()
    with pytest.raises(Conflict):
        catalog.revoke_authorization(actor=SYSTEM, patron=patron, resource_type=kind)
    actions = list(AuditEvent.objects.filter(patron_id=patron.pk).values_list("action", flat=True))
    assert actions.count("authorization.granted") == 2
    assert "authorization.revoked" in actions


def test_an_authorization_names_a_type_of_the_patrons_library(library, center) -> None:
    elsewhere = make_library()
    kind = make_type(elsewhere, "Drones", centers=[make_center(elsewhere)])
    with pytest.raises(FieldError, match="Choose a resource type of"):
        catalog.grant_authorization(actor=SYSTEM, patron=make_patron(library), resource_type=kind)


def test_the_gatekeeper_hides_other_libraries_and_checks_the_permission(library, center) -> None:
    kind = make_type(library, "Tripods", centers=[center])
    tripod = make_resource(library, kind, center)
    manager = actor(make_staff(library, [Permission.MANAGE_RESOURCES]))
    clerk = actor(make_staff(library, [Permission.VIEW_PATRONS]))
    stranger = actor(make_staff(make_library(), list(Permission)))
    assert access.resource_for_staff(manager, tripod.pk, Permission.MANAGE_RESOURCES) == tripod
    assert access.center_for_staff(manager, center.pk, Permission.MANAGE_RESOURCES) == center
    assert access.resource_type_for_staff(manager, str(kind.pk), Permission.MANAGE_RESOURCES) == kind
    with pytest.raises(PermissionDenied):
        access.resource_for_staff(clerk, tripod.pk, Permission.MANAGE_RESOURCES)
    for pk in (tripod.pk, "nonsense", 999999):
        with pytest.raises(NotFound):
            access.resource_for_staff(stranger, pk, Permission.MANAGE_RESOURCES)
    assert Resource.objects.count() == 1
