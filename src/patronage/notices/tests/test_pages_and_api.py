"""Opt-outs and notice settings through the staff pages and the REST API; the outbox page and its retry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from patronage.api.tokens import create_token
from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.notices.models import NoticeSettings
from patronage.outbox import services as outbox
from patronage.outbox.models import OutboxMessage
from patronage.patrons.models import Patron
from patronage.privacy.export import patron_data
from tests.factories import make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db


@pytest.fixture
def library() -> Library:
    return make_library("north", name="North Library")


def staff(library: Library, *permissions: Permission) -> Client:
    client = Client()
    client.force_login(make_staff(library, permissions or list(Permission)))
    return client


def failed_message(library: Library, subject: str = "Due soon") -> OutboxMessage:
    message = outbox.enqueue(kind="almost_overdue", to=["grace@example.org"], subject=subject, text="t",
                             library=library, wake=False)  # fmt: skip
    assert message is not None
    OutboxMessage.objects.filter(pk=message.pk).update(state="failed", attempts=8, last_error="SMTPDataError: 451 busy")
    return message


def test_staff_set_a_patrons_opt_outs_in_the_contact_section(library: Library) -> None:
    patron = make_patron(library)
    client = staff(library, Permission.VIEW_PATRONS, Permission.EDIT_PATRON)
    url = reverse("staff:patron-edit-section", kwargs={"pk": patron.pk, "section": "contact"})
    page = client.get(url).content.decode()
    assert 'name="opt_out_almost_overdue"' in page
    assert "No expiry reminders" in page
    response = client.post(url, {
        "primary_email": patron.primary_email, "notification_method": "email", "opt_out_inactive": "1",
    })  # fmt: skip
    assert response.status_code == 302
    patron.refresh_from_db()
    assert (patron.opt_out_inactive, patron.opt_out_almost_overdue, patron.opt_out_record_expiration) == (
        True, False, False,
    )  # fmt: skip
    detail = client.get(reverse("staff:patron-detail", kwargs={"pk": patron.pk})).content.decode()
    assert "Inactive patron." in detail
    events = AuditEvent.objects.filter(action="patron.updated", patron_id=patron.pk)
    assert any("opt_out_inactive" in e.detail["fields"] for e in events if e.detail.get("section") == "contact")


def test_the_api_reads_and_patches_opt_outs_and_the_export_holds_them(library: Library) -> None:
    patron = make_patron(library)
    token = create_token(user=make_staff(library, list(Permission)), name="t", expires_at=None)[1]
    auth: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    client = Client()
    url = f"/api/v1/patrons/{patron.pk}/"
    response = client.patch(url, data=json.dumps({"opt_out_record_expiration": True}),
                            content_type="application/json", **auth)  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["opt_out_record_expiration"] is True
    assert response.json()["opt_out_almost_overdue"] is False
    bad = client.patch(url, data=json.dumps({"opt_out_inactive": "perhaps"}), content_type="application/json", **auth)
    assert bad.status_code == 400
    assert "opt_out_inactive" in bad.content.decode()
    assert Patron.objects.get(pk=patron.pk).opt_out_inactive is False
    exported = json.dumps(patron_data(Patron.objects.get(pk=patron.pk)), default=str)
    assert '"opt_out_record_expiration": true' in exported


def test_administrators_change_the_notice_settings_with_field_errors(library: Library) -> None:
    client = staff(library, Permission.CONFIGURE_LIBRARY)
    url = reverse("staff:admin:notices")
    page = client.get(url)
    assert page.status_code == 200
    assert "Patrons may opt out of inactive-patron notices" in page.content.decode()
    bad = client.post(url, {"almost_overdue_hours": "a day", "expiration_days": "14", "inactive_days": "365"})
    assert bad.status_code == 400
    assert "Enter a whole number from 0 (off)" in bad.content.decode()
    assert not NoticeSettings.objects.filter(library=library).exists()
    good = client.post(url, {"almost_overdue_hours": "48", "expiration_days": "7", "inactive_days": "0",
                             "send_overdue": "1", "may_opt_out_record_expiration": "1"})  # fmt: skip
    assert good.status_code == 302
    saved = NoticeSettings.objects.get(library=library)
    assert (saved.almost_overdue_hours, saved.expiration_days, saved.inactive_days) == (48, 7, 0)
    assert saved.optional_kinds == frozenset({"record_expiration"})
    assert staff(library, Permission.VIEW_PATRONS).get(url).status_code == 403


def test_the_outbox_page_lists_failed_messages_and_sends_one_again(library: Library) -> None:
    message = failed_message(library, subject="Due soon: <b>laptop</b>")
    client = staff(library, Permission.CONFIGURE_LIBRARY)
    page = client.get(reverse("staff:admin:outbox"), {"state": "failed"}).content.decode()
    assert "Due soon: &lt;b&gt;laptop&lt;/b&gt;" in page  # escaped, not markup
    assert "SMTPDataError: 451 busy" in page
    assert "0 waiting, 0 sent, 1 failed." in page
    retry = reverse("staff:admin:outbox-retry", kwargs={"message_id": message.pk})
    assert client.get(retry).status_code == 405
    assert client.post(retry).status_code == 302
    message.refresh_from_db()
    assert message.state == "pending"
    assert message.attempts == 0
    assert AuditEvent.objects.filter(action="outbox.retried", library_id=library.pk).count() == 1
    again = client.post(retry)
    assert again.status_code == 400
    assert "Only a failed message" in again.content.decode()


def test_another_librarys_outbox_is_neither_shown_nor_retried(library: Library) -> None:
    message = failed_message(library, subject="North secret")
    other = make_library("south")
    client = staff(other, Permission.CONFIGURE_LIBRARY)
    assert "North secret" not in client.get(reverse("staff:admin:outbox")).content.decode()
    response = client.post(reverse("staff:admin:outbox-retry", kwargs={"message_id": message.pk}))
    assert response.status_code == 404
    message.refresh_from_db()
    assert message.state == "failed"
