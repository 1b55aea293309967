from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from patronage.core.audit import Actor
from patronage.core.errors import PermissionDenied, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries.access import permissions_by_library
from patronage.libraries.models import Branch, Library, Role
from patronage.libraries.permissions import DEFAULT_ROLES, Permission
from patronage.libraries.services import create_library, save_role
from tests.factories import make_library, make_staff

pytestmark = pytest.mark.django_db

SETTINGS = {
    "code": "lakeside",
    "name": "Lakeside Public Library",
    "currency": "EUR",
    "time_zone": "Europe/Berlin",
    "country": "DE",
    "branch_code": "central",
    "branch_name": "Central Library",
}
ADMIN = {"username": "ada", "email": "ada@lakeside.example.org", "password": "long-and-unusual-2026"}


def test_a_new_library_starts_with_a_branch_the_default_roles_and_an_administrator() -> None:
    library, membership = create_library(actor=Actor.cli(), data=SETTINGS, administrator=ADMIN)

    assert (library.code, library.currency, library.time_zone, library.country) == (
        "lakeside", "EUR", "Europe/Berlin", "DE"
    )  # fmt: skip
    branch = Branch.objects.get(library=library)
    assert (branch.code, branch.name) == ("central", "Central Library")
    roles = {r.name: set(r.permissions) for r in Role.objects.filter(library=library)}
    assert roles == {name: {p.value for p in perms} for name, perms in DEFAULT_ROLES.items()}
    user = membership.user
    assert user.check_password("long-and-unusual-2026")
    assert membership.home_branch == branch
    assert permissions_by_library(user)[library.pk] == frozenset(Permission)
    event = AuditEvent.objects.get(action="library.created")
    assert event.detail["administrator"] == "ada"


def test_the_administrator_can_then_change_roles_through_the_usual_service() -> None:
    library, membership = create_library(actor=Actor.cli(), data=SETTINGS, administrator=ADMIN)
    actor = Actor(user=membership.user)

    role = save_role(actor=actor, library=library, role=None, name="Volunteers", permissions=["view_patrons"])

    assert role.permissions == ["view_patrons"]


def test_every_problem_is_reported_at_once_and_nothing_is_written() -> None:
    make_library("lakeside")
    bad = {**SETTINGS, "currency": "XYZ", "time_zone": "Mars/Olympus", "branch_code": "no spaces", "name": ""}

    with pytest.raises(ValidationFailed) as caught:
        create_library(actor=Actor.cli(), data=bad, administrator={"username": ""})

    assert set(caught.value.errors) == {"code", "name", "currency", "time_zone", "branch_code", "username"}
    assert "exists already" in caught.value.errors["code"][0]
    assert Library.objects.count() == 1
    assert not get_user_model().objects.exists()


def test_a_weak_password_undoes_the_whole_library() -> None:
    with pytest.raises(ValidationFailed) as caught:
        create_library(actor=Actor.cli(), data=SETTINGS, administrator={**ADMIN, "password": "123"})

    assert "password" in caught.value.errors
    assert not Library.objects.filter(code="lakeside").exists()
    assert not Role.objects.exists()


def test_an_existing_account_becomes_the_administrator_of_the_new_library_too() -> None:
    first = make_library("riverside")
    staff = make_staff(first, list(Permission), username="consortium")

    library, membership = create_library(actor=Actor.cli(), data=SETTINGS, administrator={"username": "consortium"})

    assert membership.user == staff
    assert set(permissions_by_library(staff)) == {first.pk, library.pk}


def test_staff_accounts_cannot_create_libraries() -> None:
    staff = make_staff(make_library("riverside"), list(Permission), username="admin")

    with pytest.raises(PermissionDenied):
        create_library(actor=Actor(user=staff), data=SETTINGS, administrator=ADMIN)
    assert not Library.objects.filter(code="lakeside").exists()


def test_the_command_creates_the_library_and_says_how_to_set_the_password() -> None:
    out = StringIO()
    call_command(
        "create_library", "--code", "lakeside", "--name", "Lakeside Public Library", "--time-zone", "Europe/Berlin",
        "--country", "DE", "--admin-username", "ada", "--no-password", stdout=out,
    )  # fmt: skip

    assert "Created Lakeside Public Library (lakeside) with administrator ada." in out.getvalue()
    assert "patronage changepassword ada" in out.getvalue()
    assert Branch.objects.get(library__code="lakeside").name == "Lakeside Public Library"
    assert not get_user_model().objects.get(username="ada").has_usable_password()


def test_the_command_names_the_options_to_fix() -> None:
    with pytest.raises(CommandError) as caught:
        call_command(
            "create_library", "--code", "lake side", "--name", "Lakeside", "--time-zone", "Nowhere/Town",
            "--country", "DE", "--admin-username", "ada", "--no-password",
        )  # fmt: skip

    assert "--code:" in str(caught.value)
    assert "--time-zone:" in str(caught.value)
    assert not Library.objects.exists()
