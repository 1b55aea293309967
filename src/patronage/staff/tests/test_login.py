from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from patronage.core.models import AuditEvent, CredentialFailures
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from tests.factories import PASSWORD, make_library, make_staff

pytestmark = pytest.mark.django_db

NEUTRAL = "The username or password is not right"


def sign_in(client: Client, username: str, password: str) -> Any:
    response = client.post(reverse("staff:login"), {"username": username, "password": password})
    return response


@pytest.fixture
def user(library: Library) -> object:
    return make_staff(library, [Permission.VIEW_PATRONS], username="desk1")


def test_signing_in_opens_the_patron_list_and_is_audited(user: object) -> None:
    client = Client()
    response = sign_in(client, "desk1", PASSWORD)
    assert response.status_code == 302
    assert client.get(response["Location"], follow=True).redirect_chain[-1][0] == reverse("staff:patron-list")
    event = AuditEvent.objects.get(action="staff.signed_in")
    assert event.actor_label == "desk1"


def test_wrong_password_and_unknown_user_get_the_same_neutral_message(user: object) -> None:
    wrong = sign_in(Client(), "desk1", "not the password")
    unknown = sign_in(Client(), "nobody-here", "not the password")
    assert wrong.status_code == unknown.status_code == 400
    assert NEUTRAL in wrong.content.decode()
    assert NEUTRAL in unknown.content.decode()
    assert "_auth_user_id" not in Client().session


def test_after_the_failure_limit_even_the_right_password_is_refused(user: object) -> None:
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(client, "desk1", "wrong wrong wrong")
    response = sign_in(client, "desk1", PASSWORD)
    assert response.status_code == 429
    assert "Try again in" in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert not AuditEvent.objects.filter(action="staff.signed_in").exists()


def test_the_lock_is_per_account_not_for_everyone(user: object, library: Library) -> None:
    make_staff(library, [Permission.VIEW_PATRONS], username="desk2")
    for _ in range(settings.LOGIN_FAILURE_LIMIT):
        sign_in(Client(), "desk1", "wrong wrong wrong")
    assert sign_in(Client(), "desk2", PASSWORD).status_code == 302


def test_a_successful_sign_in_clears_the_failure_count(user: object) -> None:
    client = Client()
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, "desk1", "wrong wrong wrong")
    assert sign_in(client, "desk1", PASSWORD).status_code == 302
    assert not CredentialFailures.objects.filter(key="account:desk1").exists()
    client.post(reverse("staff:logout"))
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        sign_in(client, "desk1", "wrong wrong wrong")
    assert sign_in(client, "desk1", PASSWORD).status_code == 302


def test_sign_in_does_not_redirect_to_another_site(user: object) -> None:
    response = Client().post(
        reverse("staff:login"), {"username": "desk1", "password": PASSWORD, "next": "https://evil.example/"}
    )
    assert response["Location"] == reverse("staff:home")


def test_sign_out_needs_post_and_ends_the_session(user: object) -> None:
    client = Client()
    sign_in(client, "desk1", PASSWORD)
    assert client.get(reverse("staff:logout")).status_code == 405
    assert client.post(reverse("staff:logout")).status_code == 302
    assert client.get(reverse("staff:patron-list"))["Location"].startswith(reverse("staff:login"))


def test_pages_need_a_signed_in_user() -> None:
    response = Client().get(reverse("staff:patron-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff:login"))


def test_switching_library_only_to_one_the_user_belongs_to(library: Library) -> None:
    second = make_library("second", name="Second Library")
    stranger = make_library("stranger", name="Stranger Library")
    user = make_staff([library, second], [Permission.VIEW_PATRONS], username="both")
    client = Client()
    client.force_login(user)
    assert client.post(reverse("staff:switch-library"), {"library": second.pk}).status_code == 302
    assert "Second Library" in client.get(reverse("staff:patron-list")).content.decode()
    assert client.post(reverse("staff:switch-library"), {"library": stranger.pk}).status_code == 404
    page = client.get(reverse("staff:patron-list")).content.decode()
    assert "Second Library" in page
    assert "Stranger Library" not in page
