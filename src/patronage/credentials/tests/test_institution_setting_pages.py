"""The institution sign-in setting through the staff administration page and the REST API."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from patronage.api.tokens import create_token
from patronage.credentials.models import InstitutionSignIn
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from tests.factories import make_library, make_patron_type, make_staff

pytestmark = pytest.mark.django_db

PAGE = "/staff/admin/settings/institution-sign-in/"
BIND_SECRET = "search-account-secret-42"


@pytest.fixture
def library() -> Library:
    return make_library("uni", name="University Library")


def _staff(library: Library, permissions: Any = tuple(Permission)) -> Client:
    client = Client()
    client.force_login(make_staff(library, list(permissions)))
    return client


def _api(library: Library, permissions: Any = tuple(Permission)) -> dict[str, Any]:
    token = create_token(user=make_staff(library, list(permissions)), name="t", expires_at=None)[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_an_administrator_turns_it_on_and_the_password_is_never_shown_back(library: Library) -> None:
    students = make_patron_type(library, "student")
    client = _staff(library)
    form = {
        "enabled": "1", "server_uris": "ldaps://ldap1.example.edu\nldaps://ldap2.example.edu",
        "bind_dn": "cn=portal,dc=example,dc=edu", "bind_password": BIND_SECRET,
        "search_base": "ou=people,dc=example,dc=edu", "login_attribute": "uid", "id_attribute": "employeeNumber",
        "timeout_seconds": "5", "patron_types": [str(students.pk)], "password_url": "https://id.example.edu/",
    }  # fmt: skip
    response = client.post(PAGE, form)
    assert response.status_code == 302, response.content.decode()
    saved = InstitutionSignIn.objects.get(library=library)
    assert saved.enabled
    assert not saved.all_patron_types
    assert list(saved.patron_types.all()) == [students]
    assert saved.server_uris.splitlines() == ["ldaps://ldap1.example.edu", "ldaps://ldap2.example.edu"]
    page = client.get(PAGE).content.decode()
    assert BIND_SECRET not in page
    assert "A search account password is stored." in page
    # Saving again with the password field left empty keeps it.
    assert client.post(PAGE, {**form, "bind_password": ""}).status_code == 302
    assert InstitutionSignIn.objects.get(library=library).bind_password == BIND_SECRET


def test_bad_input_is_shown_field_by_field_without_the_typed_password(library: Library) -> None:
    client = _staff(library)
    response = client.post(
        PAGE, {"enabled": "1", "server_uris": "http://ldap.example.edu", "bind_password": BIND_SECRET, "timeout_seconds": "x",
               "id_attribute": "employeeNumber", "login_attribute": "uid", "all_patron_types": "1"},
    )  # fmt: skip
    page = response.content.decode()
    assert response.status_code == 400
    assert "is not an LDAP address" in page
    assert 'href="#f-server_uris"' in page
    assert "Enter whole seconds from 1 to 60" in page
    assert BIND_SECRET not in page
    assert not InstitutionSignIn.objects.filter(library=library).exists()


def test_only_administrators_see_the_page(library: Library) -> None:
    assert _staff(library, [Permission.VIEW_PATRONS]).get(PAGE).status_code == 403


def test_the_api_reads_and_changes_it_and_lists_it_with_the_library(library: Library) -> None:
    client = Client()
    auth = _api(library)
    url = f"/api/v1/libraries/{library.code}/institution-sign-in/"
    assert client.get(url, **auth).json()["enabled"] is False
    body = {
        "enabled": True, "server_uris": ["ldap://ldap.example.edu"], "start_tls": True,
        "bind_dn": "cn=portal,dc=example,dc=edu", "bind_password": BIND_SECRET,
        "search_base": "ou=people,dc=example,dc=edu", "all_patron_types": True,
    }  # fmt: skip
    response = client.patch(url, body, content_type="application/json", **auth)
    assert response.status_code == 200, response.content
    data = response.json()
    assert data["enabled"] is True
    assert data["start_tls"] is True
    assert data["bind_password_stored"] is True
    assert "bind_password" not in data
    listed = client.get("/api/v1/libraries/", **auth).json()
    assert listed[0]["institution_sign_in"]["server_uris"] == ["ldap://ldap.example.edu"]
    assert BIND_SECRET not in str(listed)
    bad = client.patch(url, {"timeout_seconds": 0}, content_type="application/json", **auth)
    assert bad.status_code == 400
    assert "timeout_seconds" in str(bad.json())


def test_the_api_hides_it_from_other_libraries_and_from_staff_who_do_not_configure(library: Library) -> None:
    client = Client()
    url = f"/api/v1/libraries/{library.code}/institution-sign-in/"
    assert client.get(url, **_api(make_library("other"))).status_code == 404
    viewer = _api(library, [Permission.VIEW_PATRONS])
    assert client.get(url, **viewer).status_code == 404
    assert client.get("/api/v1/libraries/", **viewer).json()[0]["institution_sign_in"] is None
