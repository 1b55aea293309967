"""My API tokens: each staff member's own, shown once when made, and dead once revoked."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from patronage.api.models import ApiToken
from patronage.api.tokens import create_token, user_for_token
from patronage.core import clock
from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from tests.factories import make_staff

pytestmark = pytest.mark.django_db

LIST = reverse("staff:admin:tokens")
NEW = reverse("staff:admin:token-new")
TOKEN_TEXT = re.compile(r'id="token-text" value="(pat_[^"]+)"')


def revoke_url(token: ApiToken) -> str:
    return reverse("staff:admin:token-revoke", kwargs={"token_id": token.pk})


@pytest.fixture
def user(library: Library) -> User:
    # No permissions at all: every signed-in staff member manages their own tokens.
    return make_staff(library, [], username="kiosk-keeper")


@pytest.fixture
def client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_token_text_is_shown_once_and_works(client: Client, user: User) -> None:
    response = client.post(NEW, {"name": "Self-check kiosk", "expires_on": ""})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    html = response.content.decode()
    assert "It is shown only this once" in html
    match = TOKEN_TEXT.search(html)
    assert match is not None
    raw = match.group(1)

    found = user_for_token(raw)
    assert found is not None
    assert found[0].pk == user.pk
    token = ApiToken.objects.get(user=user)
    assert raw.startswith(token.prefix)

    listing = client.get(LIST).content.decode()
    assert raw not in listing
    assert f"{token.prefix}…" in listing
    assert "Self-check kiosk" in listing
    assert AuditEvent.objects.filter(action="api_token.create", actor=user).exists()


def test_an_expiry_day_lasts_to_its_end_in_the_librarys_time_zone(client: Client, user: User) -> None:
    client.post(NEW, {"name": "Until summer", "expires_on": "2099-06-30"})
    token = ApiToken.objects.get(user=user)
    assert token.expires_at == dt.datetime(2099, 7, 1, tzinfo=ZoneInfo("America/New_York"))


def test_bad_token_input_is_shown_with_400(client: Client, user: User) -> None:
    response = client.post(NEW, {"name": "", "expires_on": ""})
    assert response.status_code == 400
    assert 'id="f-name-error"' in response.content.decode()
    response = client.post(NEW, {"name": "Old", "expires_on": "2001-01-01"})
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="f-expires_on-error"' in html
    assert "must lie in the future" in html
    response = client.post(NEW, {"name": "Odd", "expires_on": "next tuesday"})
    assert response.status_code == 400
    assert "Enter a date as year-month-day" in response.content.decode()
    assert not ApiToken.objects.filter(user=user).exists()


def test_a_revoked_token_stops_working(client: Client, user: User) -> None:
    token, raw = create_token(user=user, name="Old kiosk", expires_at=None)
    page = client.get(revoke_url(token)).content.decode()
    assert "Revoke API token Old kiosk" in page
    assert client.post(revoke_url(token)).status_code == 200  # without confirming, it only asks
    assert user_for_token(raw) is not None

    response = client.post(revoke_url(token), {"confirm": "yes"}, follow=True)
    assert response.redirect_chain[-1][0] == LIST
    assert "Revoked" in response.content.decode()
    assert user_for_token(raw) is None
    assert AuditEvent.objects.filter(action="api_token.revoke", detail__token_id=token.pk).exists()


def test_nobody_sees_or_revokes_another_members_tokens(client: Client, library: Library) -> None:
    colleague = make_staff(library, [], username="colleague")
    token, raw = create_token(user=colleague, name="Colleague's feed", expires_at=None)
    assert "Colleague&#x27;s feed" not in client.get(LIST).content.decode()
    assert client.get(revoke_url(token)).status_code == 404
    assert client.post(revoke_url(token), {"confirm": "yes"}).status_code == 404
    assert user_for_token(raw) is not None


def test_an_expired_token_is_marked(client: Client, user: User) -> None:
    soon = clock.now() + dt.timedelta(minutes=1)
    create_token(user=user, name="Short", expires_at=soon)
    with clock.frozen(soon + dt.timedelta(minutes=1)):
        html = client.get(LIST).content.decode()
    assert "Expired" in html
