"""Staff accounts (memberships) through the administration pages and the service behind them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from patronage.core.audit import Actor
from patronage.core.errors import Conflict, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries import services as library_services
from patronage.libraries.models import Library, Membership, Role
from patronage.libraries.permissions import Permission
from tests.factories import make_branch, make_staff

from .conftest import StaffClient

pytestmark = pytest.mark.django_db

CONFIGURE = Permission.CONFIGURE_LIBRARY
GOOD_PASSWORD = "lantern-orchard-47-quilt"


def admin_url(name: str, **kwargs: Any) -> str:
    return reverse(f"staff:admin:{name}", kwargs=kwargs)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_user(library: Library) -> User:
    return make_staff(library, [CONFIGURE], username="chief", role_name="Chief")


@pytest.fixture
def admin(admin_user: User) -> Client:
    return signed_in(admin_user)


@pytest.fixture
def desk_role(library: Library) -> Role:
    return Role.objects.create(library=library, name="Desk", permissions=[Permission.VIEW_PATRONS.value])


def new_account(**overrides: Any) -> dict[str, Any]:
    data = {
        "username": "newbie",
        "first_name": "Nora",
        "last_name": "Newman",
        "email": "nora@library.example.org",
        "password": GOOD_PASSWORD,
        "password_again": GOOD_PASSWORD,
        "home_branch": "",
        "roles": [],
    }
    return data | overrides


def membership_of(username: str, library: Library) -> Membership:
    return Membership.objects.select_related("user").get(user__username=username, library=library)


# --- who may use the pages ----------------------------------------------------------------------


def test_staff_pages_need_configure_library(staff_client: StaffClient, library: Library) -> None:
    client = staff_client([p for p in Permission if p != CONFIGURE])
    other = make_staff(library, [Permission.VIEW_PATRONS], username="colleague")
    membership = membership_of("colleague", library)
    for url in (
        admin_url("memberships"),
        admin_url("membership-new"),
        admin_url("membership-edit", membership_id=membership.pk),
        admin_url("membership-remove", membership_id=membership.pk),
    ):
        assert client.get(url).status_code == 403
        assert client.post(url, new_account(confirm="yes")).status_code == 403
    assert not User.objects.filter(username="newbie").exists()
    assert Membership.objects.filter(user=other, library=library).exists()


def test_a_membership_of_another_library_is_not_found(admin: Client, other_library: Library) -> None:
    theirs = make_staff(other_library, [Permission.VIEW_PATRONS], username="theirs")
    membership = membership_of("theirs", other_library)
    for url in (
        admin_url("membership-edit", membership_id=membership.pk),
        admin_url("membership-remove", membership_id=membership.pk),
    ):
        assert admin.get(url).status_code == 404
        assert admin.post(url, new_account(username="theirs", confirm="yes")).status_code == 404
    theirs.refresh_from_db()
    assert Membership.objects.filter(pk=membership.pk).exists()
    assert (theirs.first_name, theirs.check_password("correct horse battery staple")) == ("", True)


# --- creating accounts --------------------------------------------------------------------------


def test_a_new_account_with_a_password_can_sign_in_with_its_roles(
    admin: Client, library: Library, desk_role: Role
) -> None:
    branch = make_branch(library, "east")
    response = admin.post(
        admin_url("membership-new"), new_account(roles=[str(desk_role.pk)], home_branch=str(branch.pk))
    )
    assert response.status_code == 302
    membership = membership_of("newbie", library)
    assert list(membership.roles.all()) == [desk_role]
    assert membership.home_branch == branch
    assert (membership.user.first_name, membership.user.email) == ("Nora", "nora@library.example.org")

    client = Client()
    assert client.login(username="newbie", password=GOOD_PASSWORD)
    assert client.get(reverse("staff:patron-list")).status_code == 200

    event = AuditEvent.objects.get(action="membership.created")
    assert event.detail["account_created"] is True
    assert event.detail["password_set"] is True
    assert GOOD_PASSWORD not in str(event.detail)
    assert "Staff account newbie created." in admin.get(response["Location"]).content.decode()


def test_a_new_account_without_a_password_is_told_how_to_set_one(admin: Client, library: Library) -> None:
    response = admin.post(admin_url("membership-new"), new_account(password="", password_again=""), follow=True)
    assert response.status_code == 200
    html = response.content.decode()
    assert "newbie cannot sign in yet" in html
    assert "patronage changepassword newbie" in html
    assert "No password" in html  # also marked in the list
    user = User.objects.get(username="newbie")
    assert not user.has_usable_password()


def test_a_weak_password_is_refused_with_the_validators_messages(admin: Client) -> None:
    response = admin.post(admin_url("membership-new"), new_account(password="12345678", password_again="12345678"))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="f-password-error"' in html
    assert "too short" in html
    assert "entirely numeric" in html
    assert "12345678" not in html  # a password is never sent back into the page
    assert not User.objects.filter(username="newbie").exists()


def test_a_password_like_the_name_is_refused(admin: Client) -> None:
    data = new_account(password="nora.newman", password_again="nora.newman")
    response = admin.post(admin_url("membership-new"), data)
    assert response.status_code == 400
    assert "too similar" in response.content.decode()


def test_passwords_that_differ_are_refused(admin: Client) -> None:
    response = admin.post(admin_url("membership-new"), new_account(password_again=GOOD_PASSWORD + "x"))
    assert response.status_code == 400
    assert "The two passwords differ" in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_bad_account_fields_are_all_shown(admin: Client, library: Library) -> None:
    response = admin.post(
        admin_url("membership-new"),
        new_account(username="no spaces allowed", email="nora-at-home", roles=["999999", "desk"], home_branch="42"),
    )
    assert response.status_code == 400
    html = response.content.decode()
    for field in ("username", "email", "roles", "home_branch"):
        assert f'id="f-{field}-error"' in html, field
    assert not Membership.objects.filter(library=library).exclude(user__username="chief").exists()


def test_a_username_of_another_librarys_account_is_taken(admin: Client, other_library: Library) -> None:
    make_staff(other_library, [Permission.VIEW_PATRONS], username="elsewhere")
    response = admin.post(admin_url("membership-new"), new_account(username="Elsewhere"))
    assert response.status_code == 400
    assert "This username is taken; choose another." in response.content.decode()
    assert Membership.objects.filter(user__username="elsewhere").count() == 1


def test_an_administrator_of_both_libraries_gives_an_account_a_place_at_this_one(
    library: Library, other_library: Library, desk_role: Role
) -> None:
    admin_both = make_staff([library, other_library], [CONFIGURE], username="consortium-admin")
    colleague = make_staff(other_library, [Permission.VIEW_PATRONS], username="traveller")
    colleague.first_name = "Tess"
    colleague.save()
    response = signed_in(admin_both).post(
        admin_url("membership-new"),
        new_account(username="traveller", first_name="", password="", password_again="", roles=[str(desk_role.pk)]),
        follow=True,
    )
    assert "The existing account traveller now also works at Main Library." in response.content.decode()
    colleague.refresh_from_db()
    assert colleague.first_name == "Tess"  # attaching keeps what the account has
    assert colleague.check_password("correct horse battery staple")
    assert list(membership_of("traveller", library).roles.all()) == [desk_role]


# --- changing and removing ----------------------------------------------------------------------


def test_roles_and_account_details_are_changed(admin: Client, library: Library, desk_role: Role) -> None:
    colleague = make_staff(library, [Permission.TAKE_PAYMENTS], username="colleague")
    membership = membership_of("colleague", library)
    page = admin.get(admin_url("membership-edit", membership_id=membership.pk)).content.decode()
    assert 'value="colleague"' in page
    data = new_account(username="colleague2", password="", password_again="", roles=[str(desk_role.pk)])
    response = admin.post(admin_url("membership-edit", membership_id=membership.pk), data)
    assert response.status_code == 302
    colleague.refresh_from_db()
    assert (colleague.username, colleague.is_active) == ("colleague2", False)  # "Active" was not ticked
    assert list(membership.roles.all()) == [desk_role]
    assert colleague.check_password("correct horse battery staple")  # empty: the password is kept
    event = AuditEvent.objects.get(action="membership.updated")
    assert event.detail["fields"] == ["email", "first_name", "is_active", "last_name", "roles", "username"]
    assert event.detail["password_set"] is False


def test_a_new_password_is_set_on_the_edit_page(admin: Client, library: Library) -> None:
    colleague = make_staff(library, [Permission.VIEW_PATRONS], username="colleague")
    membership = membership_of("colleague", library)
    data: dict[str, Any] = {"username": "colleague", "is_active": "1", "password": GOOD_PASSWORD}
    data |= {"password_again": GOOD_PASSWORD, "roles": [str(r) for r in membership.roles.values_list("pk", flat=True)]}
    assert admin.post(admin_url("membership-edit", membership_id=membership.pk), data).status_code == 302
    colleague.refresh_from_db()
    assert colleague.check_password(GOOD_PASSWORD)


def test_an_administrator_cannot_deactivate_their_own_account(
    admin: Client, admin_user: User, library: Library
) -> None:
    membership = membership_of("chief", library)
    data = {"username": "chief", "roles": [str(r.pk) for r in membership.roles.all()]}  # "Active" left unticked
    response = admin.post(admin_url("membership-edit", membership_id=membership.pk), data)
    assert response.status_code == 400
    assert "You cannot deactivate your own account" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_active


def test_an_administrator_cannot_take_away_their_own_last_administrator_role(
    admin: Client, admin_user: User, library: Library, desk_role: Role
) -> None:
    membership = membership_of("chief", library)
    data = {"username": "chief", "is_active": "1", "roles": [str(desk_role.pk)]}
    response = admin.post(admin_url("membership-edit", membership_id=membership.pk), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "take away your own permission to configure Main Library" in html
    assert 'href="#f-roles"' in html
    assert [r.name for r in membership.roles.all()] == ["Chief"]


def test_an_administrator_cannot_remove_themselves(admin: Client, library: Library) -> None:
    membership = membership_of("chief", library)
    response = admin.post(admin_url("membership-remove", membership_id=membership.pk), {"confirm": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == admin_url("memberships")
    assert "must keep at least one administrator" in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()


def test_removing_a_colleague_keeps_their_account(admin: Client, library: Library) -> None:
    colleague = make_staff(library, [Permission.VIEW_PATRONS], username="colleague")
    membership = membership_of("colleague", library)
    url = admin_url("membership-remove", membership_id=membership.pk)
    assert "loses their roles at Main Library" in admin.get(url).content.decode()
    assert admin.post(url).status_code == 200  # without confirming, it only asks
    assert admin.post(url, {"confirm": "yes"}).status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert User.objects.filter(pk=colleague.pk).exists()
    event = AuditEvent.objects.get(action="membership.removed")
    assert event.detail == {"membership_id": membership.pk, "user_id": colleague.pk, "username": "colleague"}
    assert signed_in(colleague).get(reverse("staff:patron-list")).status_code == 403


def test_an_account_of_other_libraries_keeps_its_details_here(
    admin: Client, library: Library, other_library: Library, desk_role: Role
) -> None:
    shared = make_staff([library, other_library], [Permission.VIEW_PATRONS], username="shared")
    membership = membership_of("shared", library)
    url = admin_url("membership-edit", membership_id=membership.pk)
    page = admin.get(url).content.decode()
    assert "also works at other libraries, where you do not configure" in page
    assert 'name="username"' not in page
    assert 'name="password"' not in page
    response = admin.post(
        url,
        {"username": "hijacked", "password": GOOD_PASSWORD, "password_again": GOOD_PASSWORD, "roles": [desk_role.pk]},
    )
    assert response.status_code == 302  # only the roles and home branch are taken from the form
    shared.refresh_from_db()
    assert (shared.username, shared.check_password(GOOD_PASSWORD)) == ("shared", False)
    assert list(membership.roles.all()) == [desk_role]


def test_the_service_refuses_changing_an_account_the_actor_does_not_fully_administer(
    admin_user: User, library: Library, other_library: Library
) -> None:
    make_staff([library, other_library], [Permission.VIEW_PATRONS], username="shared")
    membership = membership_of("shared", library)
    with pytest.raises(ValidationFailed) as caught:
        library_services.save_membership(
            actor=Actor(user=admin_user),
            library=library,
            membership=membership,
            data={"username": "hijacked", "password": GOOD_PASSWORD},
            roles=[],
        )
    assert set(caught.value.errors) == {"username", "password"}


def test_the_command_line_cannot_leave_a_library_without_an_administrator(admin_user: User, library: Library) -> None:
    with pytest.raises(Conflict, match="would be left without an administrator"):
        library_services.remove_membership(
            actor=Actor.cli(), library=library, membership=membership_of("chief", library)
        )
    assert Membership.objects.filter(user=admin_user, library=library).exists()
