"""Staff see and manage a patron's portal sign-in on the patron page and through the API."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import mail
from django.test import Client

from patronage.api.tokens import create_token
from patronage.core.models import AuditEvent
from patronage.credentials import services
from patronage.credentials.models import PasswordLink
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db

SECRET = "plum-orchard-41-lantern"


@pytest.fixture
def library() -> Library:
    return make_library("north", name="North Library")


@pytest.fixture
def patron(library: Library) -> Patron:
    return make_patron(library, person_id="P-1001", first_name="Grace", last_name="Hopper")


def _staff(library: Library, permissions: Any = tuple(Permission)) -> Client:
    client = Client()
    client.force_login(make_staff(library, list(permissions)))
    return client


def _lock(library: Library, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 1
    with pytest.raises(services.SignInLocked):
        services.authenticate(library, "P-1001", "wrong", None)


def test_the_patron_page_shows_password_and_lock_state(library: Library, patron: Patron, settings: Any) -> None:
    client = _staff(library)
    page = client.get(f"/staff/patrons/{patron.pk}/").content.decode()
    assert "Portal sign-in" in page
    assert "Not locked" in page
    assert "Send set-password link" in page
    assert "Clear the sign-in lock" not in page
    services.set_password(patron, SECRET, actor=SYSTEM)
    _lock(library, settings)
    page = client.get(f"/staff/patrons/{patron.pk}/").content.decode()
    assert "Yes, on" in page
    assert "Locked after failed attempts" in page
    assert "Clear the sign-in lock" in page


def test_staff_clear_the_lock_and_it_is_audited(library: Library, patron: Patron, settings: Any) -> None:
    services.set_password(patron, SECRET, actor=SYSTEM)
    _lock(library, settings)
    client = _staff(library)
    response = client.post(f"/staff/patrons/{patron.pk}/sign-in-lock/clear/")
    assert response.status_code == 302
    assert services.authenticate(library, "P-1001", SECRET, None) == patron
    event = AuditEvent.objects.get(action="patron.sign_in_lock_cleared")
    assert event.actor is not None
    assert event.patron_id == patron.pk


def test_staff_send_a_link_by_e_mail(library: Library, patron: Patron, django_capture_on_commit_callbacks: Any) -> None:
    client = _staff(library)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/staff/patrons/{patron.pk}/password-link/")
    assert response.status_code == 302
    assert "on its way to" in client.get(response["Location"]).content.decode()
    [message] = mail.outbox
    assert message.to == [patron.primary_email]
    assert "/portal/north/set-password/" in message.body
    assert PasswordLink.objects.get(patron=patron).purpose == PasswordLink.Purpose.SET


def test_without_an_address_staff_are_told_and_nothing_is_sent(library: Library) -> None:
    patron = make_patron(library, primary_email="")
    client = _staff(library)
    response = client.post(f"/staff/patrons/{patron.pk}/password-link/")
    assert response.status_code == 302
    assert "has no primary e-mail address" in client.get(response["Location"]).content.decode()
    assert mail.outbox == []
    assert not PasswordLink.objects.exists()


def test_changing_sign_in_needs_the_edit_permission(library: Library, patron: Patron) -> None:
    client = _staff(library, [Permission.VIEW_PATRONS])
    assert client.post(f"/staff/patrons/{patron.pk}/password-link/").status_code == 403
    assert client.post(f"/staff/patrons/{patron.pk}/sign-in-lock/clear/").status_code == 403
    assert "Send set-password link" not in client.get(f"/staff/patrons/{patron.pk}/").content.decode()


def test_another_librarys_staff_get_not_found(patron: Patron) -> None:
    client = _staff(make_library("south"))
    assert client.post(f"/staff/patrons/{patron.pk}/password-link/").status_code == 404
    assert client.post(f"/staff/patrons/{patron.pk}/sign-in-lock/clear/").status_code == 404


def _api(library: Library, permissions: Any = tuple(Permission)) -> dict[str, Any]:
    token = create_token(user=make_staff(library, list(permissions)), name="t", expires_at=None)[1]
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_api_sends_a_link_and_clears_the_lock(
    library: Library, patron: Patron, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    auth = _api(library)
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/api/v1/patrons/{patron.pk}/password-link/", {"purpose": "reset"}, content_type="application/json", **auth
        )
    assert response.status_code == 201, response.content
    assert response.json()["purpose"] == "reset"
    assert response.json()["sent_to"] == patron.primary_email
    assert len(mail.outbox) == 1
    services.set_password(patron, SECRET, actor=SYSTEM)
    _lock(library, settings)
    assert client.get(f"/api/v1/patrons/{patron.pk}/sign-in-lock/", **auth).json()["locked"] is True
    response = client.delete(f"/api/v1/patrons/{patron.pk}/sign-in-lock/", **auth)
    assert response.status_code == 200
    assert response.json() == {
        **response.json(),
        "has_password": True,
        "locked": False,
        "locked_until": None,
    }
    assert AuditEvent.objects.filter(action="patron.sign_in_lock_cleared", channel="api").exists()


def test_api_refusals_are_problem_documents(library: Library, patron: Patron) -> None:
    client = Client()
    no_address = make_patron(library, primary_email="")
    response = client.post(f"/api/v1/patrons/{no_address.pk}/password-link/", **_api(library))
    assert response.status_code == 409
    assert response.json()["code"] == "no_email_address"
    response = client.post(
        f"/api/v1/patrons/{patron.pk}/password-link/", {"purpose": "bogus"}, content_type="application/json",
        **_api(library),
    )  # fmt: skip
    assert response.status_code == 400
    assert "purpose" in str(response.json())
    viewer = _api(library, [Permission.VIEW_PATRONS])
    assert client.delete(f"/api/v1/patrons/{patron.pk}/sign-in-lock/", **viewer).status_code == 403
    assert client.get(f"/api/v1/patrons/{patron.pk}/sign-in-lock/", **viewer).status_code == 200
    assert client.post(f"/api/v1/patrons/{patron.pk}/password-link/", **_api(make_library("south"))).status_code == 404
