"""Roles through the administration pages: a checkbox per permission, changes that take effect at once,
and a library that always keeps an administrator."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from patronage.core.models import AuditEvent
from patronage.libraries.models import Library, Membership, Role
from patronage.libraries.permissions import Permission
from tests.factories import make_staff

from .conftest import StaffClient

pytestmark = pytest.mark.django_db

CONFIGURE = Permission.CONFIGURE_LIBRARY


def admin_url(name: str, **kwargs: Any) -> str:
    return reverse(f"staff:admin:{name}", kwargs=kwargs)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_user(library: Library) -> User:
    return make_staff(library, [CONFIGURE, Permission.VIEW_PATRONS], username="chief", role_name="Chief")


@pytest.fixture
def admin(admin_user: User) -> Client:
    return signed_in(admin_user)


def role_of(user: User, library: Library) -> Role:
    return Membership.objects.get(user=user, library=library).roles.get()


def test_role_pages_need_configure_library(staff_client: StaffClient, library: Library) -> None:
    client = staff_client([p for p in Permission if p != CONFIGURE])
    role = Role.objects.create(library=library, name="Desk", permissions=[Permission.VIEW_PATRONS.value])
    for url in (admin_url("roles"), admin_url("role-new"), admin_url("role-edit", role_id=role.pk)):
        assert client.get(url).status_code == 403
    assert client.post(admin_url("role-new"), {"name": "Sneaky", "permissions": [CONFIGURE.value]}).status_code == 403
    assert client.post(admin_url("role-delete", role_id=role.pk), {"confirm": "yes"}).status_code == 403
    assert list(Role.objects.filter(library=library, name__in=["Sneaky", "Desk"]).values_list("name", flat=True)) == [
        "Desk"
    ]


def test_a_role_of_another_library_is_not_found(admin: Client, other_library: Library) -> None:
    role = Role.objects.create(library=other_library, name="Theirs", permissions=[])
    for url in (admin_url("role-edit", role_id=role.pk), admin_url("role-delete", role_id=role.pk)):
        assert admin.get(url).status_code == 404
        assert (
            admin.post(url, {"name": "Mine now", "permissions": [CONFIGURE.value], "confirm": "yes"}).status_code == 404
        )
    role.refresh_from_db()
    assert (role.name, role.permissions) == ("Theirs", [])


def test_the_role_form_has_a_labelled_checkbox_per_permission(admin: Client) -> None:
    html = admin.get(admin_url("role-new")).content.decode()
    for permission in Permission:
        assert f'name="permissions" value="{permission.value}"' in html
        assert f'<label for="f-permissions-{permission.value}">{permission.label}</label>' in html


def test_a_role_is_created_and_audited(admin: Client, library: Library) -> None:
    response = admin.post(
        admin_url("role-new"),
        {"name": "Cashier", "permissions": [Permission.TAKE_PAYMENTS.value, Permission.VIEW_PATRONS.value]},
    )
    assert response.status_code == 302
    role = Role.objects.get(library=library, name="Cashier")
    assert role.permissions == ["view_patrons", "take_payments"]  # in the order of Permission
    event = AuditEvent.objects.get(action="role.created")
    assert event.detail["added"] == ["take_payments", "view_patrons"]
    html = admin.get(admin_url("roles")).content.decode()
    assert "Cashier" in html
    assert "Debts - Take payments" in html


def test_bad_role_input_is_shown_with_400(admin: Client, library: Library) -> None:
    response = admin.post(admin_url("role-new"), {"name": "chief", "permissions": ["launch_rockets", "view_patrons"]})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Main Library already has a role called" in html  # names are compared without case
    assert "Unknown permission launch_rockets" in html
    assert 'href="#f-permissions"' in html
    assert 'value="view_patrons" checked' in html  # what was ticked stays ticked
    assert not Role.objects.filter(library=library, name="chief").exists()


def test_changing_a_role_takes_effect_on_the_next_request(admin: Client, library: Library) -> None:
    desk = make_staff(library, [Permission.VIEW_PATRONS], username="desk", role_name="Desk")
    desk_client = signed_in(desk)
    assert desk_client.get(reverse("staff:patron-list")).status_code == 200
    role = role_of(desk, library)

    response = admin.post(admin_url("role-edit", role_id=role.pk), {"name": "Desk", "permissions": []})
    assert response.status_code == 302
    assert desk_client.get(reverse("staff:patron-list")).status_code == 403

    admin.post(
        admin_url("role-edit", role_id=role.pk), {"name": "Desk", "permissions": [Permission.VIEW_PATRONS.value]}
    )
    assert desk_client.get(reverse("staff:patron-list")).status_code == 200
    details = list(AuditEvent.objects.filter(action="role.updated").order_by("id").values_list("detail", flat=True))
    assert [(d["added"], d["removed"]) for d in details] == [([], ["view_patrons"]), (["view_patrons"], [])]


def test_an_administrator_cannot_take_away_their_own_last_configure_permission(
    admin: Client, admin_user: User, library: Library
) -> None:
    make_staff(library, [CONFIGURE], username="deputy")  # another administrator does not change this
    role = role_of(admin_user, library)
    response = admin.post(admin_url("role-edit", role_id=role.pk), {"name": "Chief", "permissions": ["view_patrons"]})
    assert response.status_code == 400
    html = response.content.decode()
    assert "take away your own permission to configure Main Library" in html
    assert "must keep at least one administrator" in html
    role.refresh_from_db()
    assert CONFIGURE.value in role.permissions


def test_with_a_second_administrator_role_one_may_be_changed(admin: Client, admin_user: User, library: Library) -> None:
    spare = Role.objects.create(library=library, name="Spare admin", permissions=[CONFIGURE.value])
    Membership.objects.get(user=admin_user, library=library).roles.add(spare)
    role = Role.objects.get(library=library, name="Chief")
    response = admin.post(admin_url("role-edit", role_id=role.pk), {"name": "Chief", "permissions": ["view_patrons"]})
    assert response.status_code == 302
    role.refresh_from_db()
    assert role.permissions == ["view_patrons"]


def test_a_role_held_by_staff_cannot_be_deleted(admin: Client, library: Library) -> None:
    desk = make_staff(library, [Permission.VIEW_PATRONS], username="desk", role_name="Desk")
    role = role_of(desk, library)
    page = admin.get(admin_url("role-delete", role_id=role.pk)).content.decode()
    assert "held by 1 staff account" in page
    response = admin.post(admin_url("role-delete", role_id=role.pk), {"confirm": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == admin_url("roles")
    assert "Take it away from them under Staff accounts first" in response.content.decode()
    assert Role.objects.filter(pk=role.pk).exists()


def test_a_role_nobody_holds_is_deleted_after_confirming(admin: Client, library: Library) -> None:
    role = Role.objects.create(library=library, name="Unused", permissions=[])
    assert admin.post(admin_url("role-delete", role_id=role.pk)).status_code == 200  # no confirmation: asks
    assert Role.objects.filter(pk=role.pk).exists()
    assert admin.post(admin_url("role-delete", role_id=role.pk), {"confirm": "yes"}).status_code == 302
    assert not Role.objects.filter(pk=role.pk).exists()
    event = AuditEvent.objects.get(action="role.deleted")
    assert event.detail == {"role_id": role.pk, "name": "Unused"}
