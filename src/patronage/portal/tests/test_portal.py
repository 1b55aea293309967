"""The portal's first pages as a patron meets them: sign in and out, passwords, centers, the dashboard."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from patronage.core import clock
from patronage.credentials import services
from patronage.libraries.models import Library
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron
from tests.factories import PASSWORD, SYSTEM, make_branch, make_library, make_patron, make_staff

from .conftest import SECRET, sign_in

pytestmark = pytest.mark.django_db

NEUTRAL = "The card number or password is not right. Check both and try again."


def test_sign_in_by_person_id_goes_through_the_only_center_to_the_dashboard(patron: Patron) -> None:
    client = Client()
    response = sign_in(client)
    assert response["Location"] == "/portal/north/center/"
    response = client.get("/portal/north/center/")
    assert response["Location"] == "/portal/north/"
    page = client.get("/portal/north/").content.decode()
    assert "Welcome, Grace Hopper" in page
    assert "You are using <strong>Media Lab</strong>" in page
    assert "good standing" in page


def test_sign_in_by_current_barcode(patron: Patron) -> None:
    client = Client()
    assert sign_in(client, "2100000001")["Location"] == "/portal/north/center/"


def test_old_barcode_wrong_password_and_unknown_account_get_the_same_page(patron: Patron) -> None:
    patron_services.issue_barcode(actor=SYSTEM, patron=patron, number="2100000002")
    answers = [
        sign_in(Client(), "2100000001"),
        sign_in(Client(), "P-1001", "not-it"),
        sign_in(Client(), "P-404"),
    ]
    for response in answers:
        assert response.status_code == 400
        page = response.content.decode()
        assert NEUTRAL in page
        # The error summary links to the field, which says what is wrong.
        assert 'href="#f-identifier"' in page
        assert 'aria-invalid="true"' in page


def test_a_patron_of_library_a_cannot_sign_in_at_library_b(patron: Patron) -> None:
    make_library("south", name="South Library")
    response = sign_in(Client(), library="south")
    assert response.status_code == 400
    assert NEUTRAL in response.content.decode()
    # Signed in at North, the South portal still asks for a sign-in.
    client = Client()
    sign_in(client)
    assert client.get("/portal/south/")["Location"] == "/portal/south/sign-in/"


def test_lock_out_after_the_limit_then_the_cool_off(patron: Patron, settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 2
    client = Client()
    assert sign_in(client, password="wrong").status_code == 400
    response = sign_in(client, password="wrong")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts" in response.content.decode()
    assert sign_in(client).status_code == 429
    with clock.frozen(clock.now() + dt.timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS + 1)):
        assert sign_in(client).status_code == 302


def test_standing_forbidding_sign_in_shows_the_patrons_reasons(patron: Patron) -> None:
    patron_services.update_section(actor=SYSTEM, patron=patron, section="membership", data={"status": "inactive"})
    response = sign_in(Client())
    assert response.status_code == 403
    page = response.content.decode()
    assert 'data-code="record_inactive"' in page
    assert "What to do:" in page


def test_a_patron_made_inactive_is_signed_out_at_the_next_click(signed_in: Client, patron: Patron) -> None:
    assert signed_in.get("/portal/north/").status_code == 200
    Patron.objects.filter(pk=patron.pk).update(status=Patron.Status.INACTIVE)
    response = signed_in.get("/portal/north/")
    assert response["Location"] == "/portal/north/sign-in/"


def test_the_session_ends_after_the_idle_time(signed_in: Client, settings: Any) -> None:
    settings.PATRONAGE_PORTAL_IDLE_MINUTES = 15
    with clock.frozen(clock.now() + dt.timedelta(minutes=14)):
        assert signed_in.get("/portal/north/").status_code == 200
    with clock.frozen(clock.now() + dt.timedelta(minutes=14 + 16)):
        response = signed_in.get("/portal/north/")
        assert response["Location"] == "/portal/north/sign-in/"
        page = signed_in.get(response["Location"]).content.decode()
        assert "signed out after 15 minutes without activity" in page
        assert signed_in.get("/portal/north/").status_code == 302


def test_sign_out_needs_post_and_ends_the_session(signed_in: Client) -> None:
    assert signed_in.get("/portal/north/sign-out/").status_code == 405
    old_key = signed_in.session.session_key
    assert signed_in.post("/portal/north/sign-out/")["Location"] == "/portal/north/sign-in/"
    assert signed_in.get("/portal/north/")["Location"] == "/portal/north/sign-in/"
    assert signed_in.session.session_key != old_key


def test_signing_in_gives_a_new_session_key(patron: Patron) -> None:
    client = Client()
    client.get("/portal/north/sign-in/")
    before = client.session.session_key
    sign_in(client)
    assert client.session.session_key != before


def test_with_several_centers_the_patron_chooses_one(library: Library, signed_in: Client) -> None:
    make_branch(library, "music", name="Music Room", is_checkout_center=True)
    make_branch(library, "stacks", name="Closed Stacks")  # lends nothing: not offered
    page = signed_in.get("/portal/north/").content.decode()
    assert "Welcome" not in page
    page = signed_in.get("/portal/north/center/").content.decode()
    assert "Media Lab" in page
    assert "Music Room" in page
    assert "Closed Stacks" not in page
    response = signed_in.post("/portal/north/center/", {"center": "999999"})
    assert response.status_code == 400
    assert "Choose one of the checkout centers." in response.content.decode()
    music = library.branches.get(code="music")
    assert signed_in.post("/portal/north/center/", {"center": music.pk})["Location"] == "/portal/north/"
    page = signed_in.get("/portal/north/").content.decode()
    assert "You are using <strong>Music Room</strong>" in page
    assert "Switch center" in page


def test_standing_problems_are_shown_in_plain_words_with_remedies(signed_in: Client, patron: Patron) -> None:
    from patronage.blocks import services as blocks

    blocks.block_patron(actor=SYSTEM, patron=patron, comment="Lost camera")
    page = signed_in.get("/portal/north/").content.decode()
    assert 'data-code="blocked_by_staff"' in page
    assert "What to do:" in page


def test_html_in_names_is_shown_as_text(library: Library) -> None:
    patron = make_patron(library, person_id="P-X", first_name="<script>alert(1)</script>", last_name="<b>Bold</b>")
    services.set_password(patron, SECRET, actor=SYSTEM)
    client = Client()
    sign_in(client, "P-X")
    page = client.get("/portal/north/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;Bold&lt;/b&gt;" in page


def test_a_patron_cannot_reach_staff_pages_and_staff_are_not_signed_into_the_portal(
    library: Library, signed_in: Client
) -> None:
    assert signed_in.get("/staff/patrons/")["Location"].startswith("/staff/login/")
    assert signed_in.get("/api/v1/patrons/").status_code in {401, 403}
    staff = Client()
    staff.force_login(make_staff(library, username="desk"))
    assert staff.get("/portal/north/")["Location"] == "/portal/north/sign-in/"


def test_every_form_needs_its_csrf_token(patron: Patron) -> None:
    client = Client(enforce_csrf_checks=True)
    for path, data in [
        ("/portal/north/sign-in/", {"identifier": "P-1001", "password": SECRET}),
        ("/portal/north/forgot-password/", {"identifier": "P-1001"}),
        ("/portal/north/sign-out/", {}),
        ("/portal/north/contrast/", {"contrast": "on"}),
        ("/portal/north/center/", {"center": "1"}),
        ("/portal/north/set-password/", {"password": "x", "confirm": "x"}),
    ]:
        assert client.post(path, data).status_code == 403, path
    page = client.get("/portal/north/sign-in/").content.decode()
    assert page.count("csrfmiddlewaretoken") == page.count("<form")


def test_forgot_password_answers_the_same_and_mails_only_a_real_account(
    patron: Patron, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        known = Client().post("/portal/north/forgot-password/", {"identifier": "P-1001"})
        unknown = Client().post("/portal/north/forgot-password/", {"identifier": "P-404"})
    assert known.status_code == unknown.status_code == 200
    # Byte for byte the same page, but for the per-client CSRF token of the menu's forms.
    token = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]+"')
    assert token.sub(b"", known.content) == token.sub(b"", unknown.content)
    assert [m.to for m in mail.outbox] == [[patron.primary_email]]


def test_the_e_mailed_link_sets_the_password_once_and_ends_older_sessions(
    signed_in: Client, patron: Patron, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        Client().post("/portal/north/forgot-password/", {"identifier": "P-1001"})
    path = re.search(r"https?://[^/]+(/portal/north/set-password/\S+/)", str(mail.outbox[0].body))
    assert path is not None
    client = Client()
    # The token leaves the address bar at once.
    assert client.get(path.group(1))["Location"] == "/portal/north/set-password/"
    form = client.get("/portal/north/set-password/").content.decode()
    assert 'autocomplete="new-password"' in form
    mismatch = client.post("/portal/north/set-password/", {"password": "new-harbour-7", "confirm": "other"})
    assert mismatch.status_code == 400
    assert 'href="#f-confirm"' in mismatch.content.decode()
    weak = client.post("/portal/north/set-password/", {"password": "12345", "confirm": "12345"})
    assert weak.status_code == 400
    assert 'href="#f-password"' in weak.content.decode()
    done = client.post("/portal/north/set-password/", {"password": "new-harbour-7a", "confirm": "new-harbour-7a"})
    assert done["Location"] == "/portal/north/sign-in/"
    assert sign_in(Client(), password="new-harbour-7a").status_code == 302
    # The old session was opened with the old password: it ends.
    assert signed_in.get("/portal/north/")["Location"] == "/portal/north/sign-in/"
    # The link works once.
    again = Client()
    again.get(path.group(1))
    page = again.get("/portal/north/set-password/")
    assert page.status_code == 400
    assert "already been used" in page.content.decode()


def test_an_expired_link_says_so_and_offers_a_new_one(patron: Patron) -> None:
    _, token = services.issue_link(patron)
    client = Client()
    client.get(f"/portal/north/set-password/{token}/")
    with clock.frozen(clock.now() + dt.timedelta(hours=25)):
        page = client.get("/portal/north/set-password/").content.decode()
    assert "expired" in page
    assert "/portal/north/forgot-password/" in page


def test_high_contrast_is_remembered(patron: Patron) -> None:
    client = Client()
    response = client.post("/portal/north/contrast/", {"contrast": "on", "next": "/portal/north/sign-in/"})
    assert response["Location"] == "/portal/north/sign-in/"
    page = client.get("/portal/north/sign-in/").content.decode()
    assert 'class="high-contrast"' in page
    assert 'aria-pressed="true"' in page
    assert 'contrast.css" media="all"' in page
    client.post("/portal/north/contrast/", {"contrast": "off", "next": "https://evil.example/"})
    page = client.get("/portal/north/sign-in/").content.decode()
    assert 'media="(prefers-contrast: more)"' in page
    assert 'aria-pressed="false"' in page


def test_pages_have_the_accessible_frame(signed_in: Client) -> None:
    page = signed_in.get("/portal/north/").content.decode()
    assert '<html lang="en"' in page
    assert 'class="skip-link" href="#main"' in page
    assert 'id="main"' in page
    assert 'aria-label="Session menu"' in page
    assert "Sign out" in page
    assert "Help" in page
    assert signed_in.get("/portal/north/help/").status_code == 200


def test_portal_index_goes_to_the_only_library_and_unknown_libraries_are_not_found(library: Library) -> None:
    assert Client().get("/portal/")["Location"] == "/portal/north/"
    assert Client().get("/portal/nowhere/sign-in/").status_code == 404
    make_library("south", name="South Library")
    page = Client().get("/portal/").content.decode()
    assert "North Library" in page
    assert "South Library" in page


def test_staff_sign_in_still_works_beside_a_portal_session(library: Library, signed_in: Client) -> None:
    make_staff(library, username="desk")
    assert signed_in.post("/staff/login/", {"username": "desk", "password": PASSWORD}).status_code == 302
    assert signed_in.get("/portal/north/").status_code == 200
