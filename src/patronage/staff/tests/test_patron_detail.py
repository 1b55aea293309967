from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.test import Client
from django.urls import reverse

from patronage.blocks import services as blocks
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.fines.models import Payment
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_patron

from .conftest import StaffClient

pytestmark = pytest.mark.django_db


def url(name: str, patron: Patron, **kwargs: str) -> str:
    return reverse(name, kwargs={"pk": patron.pk, **kwargs})


@pytest.fixture
def admin(staff_client: StaffClient) -> Client:
    return staff_client(list(Permission))


def test_details_show_the_standing_with_the_soft_block_explained(admin: Client, patron: Patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="7.50")
    html = admin.get(url("staff:patron-detail", patron)).content.decode()
    assert "Owes 7.50 USD, over the limit of 5.00 USD" in html
    assert "Pay 2.50 USD to go under the limit." in html
    assert "cannot be lifted by hand" in html
    assert 'aria-current="page">Patron data<' in html


def test_each_tab_is_a_link_and_marks_itself_current(admin: Client, patron: Patron) -> None:
    for name, label in (
        ("staff:patron-debts", "Debts"),
        ("staff:patron-blocks", "Blocks"),
        ("staff:patron-history", "History"),
    ):
        html = admin.get(url(name, patron)).content.decode()
        assert f'aria-current="page">{label}<' in html


def test_section_edit_with_bad_input_shows_field_errors_and_writes_nothing(admin: Client, patron: Patron) -> None:
    before = AuditEvent.objects.filter(action="patron.updated").count()
    response = admin.post(
        url("staff:patron-edit-section", patron, section="identity"),
        {"first_name": "", "last_name": "Hopper-Murray", "birth_date": "31/31/1990", "person_id": ""},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="f-first_name-error"' in html
    assert 'aria-describedby="f-first_name-error"' in html
    assert 'id="f-birth_date-error"' in html
    assert 'href="#f-birth_date"' in html  # the summary links to the field
    assert 'value="Hopper-Murray"' in html  # what was typed is kept
    patron.refresh_from_db()
    assert (patron.first_name, patron.last_name) == ("Grace", "Hopper")
    assert AuditEvent.objects.filter(action="patron.updated").count() == before


def test_a_ten_thousand_character_name_is_refused(admin: Client, patron: Patron) -> None:
    response = admin.post(
        url("staff:patron-edit-section", patron, section="identity"),
        {"first_name": "G" * 10_000, "last_name": "Hopper", "birth_date": "", "person_id": ""},
    )
    assert response.status_code == 400
    assert "at most 150 characters" in response.content.decode()
    patron.refresh_from_db()
    assert patron.first_name == "Grace"


def test_contact_with_a_bad_phone_changes_neither_email_nor_phones(admin: Client, patron: Patron) -> None:
    response = admin.post(
        url("staff:patron-edit-section", patron, section="contact"),
        {
            "primary_email": "new@example.org",
            "alternate_email": "",
            "notification_method": "email",
            "phone_mobile": "12",
        },
    )
    assert response.status_code == 400
    assert 'id="f-phone_mobile-error"' in response.content.decode()
    patron.refresh_from_db()
    assert patron.primary_email == "grace@example.org"
    assert not patron.phones.exists()


def test_contact_section_saves_emails_and_phones(admin: Client, patron: Patron) -> None:
    response = admin.post(
        url("staff:patron-edit-section", patron, section="contact"),
        {"primary_email": "new@example.org", "notification_method": "sms", "phone_mobile": "+1 202 555 0143"},
    )
    assert response.status_code == 302
    patron.refresh_from_db()
    assert patron.primary_email == "new@example.org"
    assert patron.phones.get().number == "+12025550143"
    assert "(202) 555-0143" in admin.get(url("staff:patron-detail", patron)).content.decode()


def test_membership_and_addresses_sections(admin: Client, patron: Patron) -> None:
    membership = admin.get(url("staff:patron-edit-section", patron, section="membership")).content.decode()
    assert f'value="{patron.patron_type_id}" selected' in membership
    response = admin.post(
        url("staff:patron-edit-section", patron, section="membership"),
        {"patron_type": patron.patron_type_id, "registered_branch": patron.registered_branch_id, "status": "inactive",
         "expires_on": "2031-01-31", "signature_on_file": "1"},
    )  # fmt: skip
    assert response.status_code == 302
    patron.refresh_from_db()
    assert (patron.status, str(patron.expires_on), patron.signature_on_file) == ("inactive", "2031-01-31", True)
    bad = admin.post(
        url("staff:patron-edit-section", patron, section="addresses"),
        {
            "address-home-line1": "1 Main St",
            "address-home-city": "",
            "address-work-line1": "2 Work Rd",
            "address-work-city": "Town",
        },
    )
    assert bad.status_code == 400
    assert 'id="f-address-home-city-error"' in bad.content.decode()
    assert not patron.addresses.exists()
    good = admin.post(
        url("staff:patron-edit-section", patron, section="addresses"),
        {"address-home-line1": "1 Main St", "address-home-city": "Springfield"},
    )
    assert good.status_code == 302
    assert patron.addresses.get().city == "Springfield"


def test_issuing_a_barcode_keeps_the_old_one_as_history(admin: Client, patron: Patron) -> None:
    old = patron.barcodes.get().number
    response = admin.post(url("staff:patron-edit-section", patron, section="barcodes"), {"barcode": "NEW-12345"})
    assert response.status_code == 302
    assert list(patron.barcodes.values_list("number", "is_active")) == [("NEW-12345", True), (old, False)]
    taken = admin.post(url("staff:patron-edit-section", patron, section="barcodes"), {"barcode": old})
    assert taken.status_code == 400
    assert "already in use" in taken.content.decode()


def test_an_unknown_section_is_not_found(admin: Client, patron: Patron) -> None:
    assert admin.get(url("staff:patron-edit-section", patron, section="password")).status_code == 404


def test_html_in_a_name_and_a_block_comment_is_shown_as_text(admin: Client, library: Library) -> None:
    patron = make_patron(library, first_name="<script>alert('n')</script>", last_name="Doe")
    admin.post(url("staff:patron-block", patron), {"comment": "<script>alert('c')</script><b>bold</b>"})
    for name in ("staff:patron-detail", "staff:patron-blocks"):
        html = admin.get(url(name, patron)).content.decode()
        assert "<script>alert(" not in html
        assert "<b>bold</b>" not in html
        assert "&lt;script&gt;alert(" in html
    listing = admin.get(reverse("staff:patron-list"), {"q": "doe"}).content.decode()
    assert "<script>alert(" not in listing


def test_block_with_an_end_and_the_block_history(admin: Client, patron: Patron) -> None:
    missing = admin.post(url("staff:patron-block", patron), {"comment": "  "})
    assert missing.status_code == 400
    assert 'id="f-comment-error"' in missing.content.decode()
    bad_end = admin.post(url("staff:patron-block", patron), {"comment": "Lost ID", "ends_at": "tomorrow"})
    assert bad_end.status_code == 400
    assert (
        admin.post(url("staff:patron-block", patron), {"comment": "Lost ID", "ends_at": "2099-01-31T17:00"}).status_code
        == 302
    )
    again = admin.post(url("staff:patron-block", patron), {"comment": "Twice"}, follow=True)
    assert "already blocked" in again.content.decode()
    assert "Unblock patron" in admin.get(url("staff:patron-detail", patron)).content.decode()
    admin.post(url("staff:patron-unblock", patron), {"comment": "ID found"})
    history = admin.get(url("staff:patron-blocks", patron)).content.decode()
    assert "Lost ID" in history
    assert "ID found" in history
    assert "Lifted" in history
    assert "2099-01-31" in history


def test_delete_is_refused_with_reasons_then_allowed_in_two_steps(admin: Client, patron: Patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="3.00")
    first = admin.get(url("staff:patron-delete", patron)).content.decode()
    assert "The patron owes 3.00 USD." in first
    assert 'name="confirm"' not in first
    refused = admin.post(url("staff:patron-delete", patron), {"confirm": "yes"})
    assert refused.status_code == 409
    assert "The patron owes 3.00 USD." in refused.content.decode()
    assert Patron.objects.filter(pk=patron.pk).exists()

    fines.take_payment(actor=SYSTEM, patron=patron, amount="3.00", method="cash", idempotency_key="settle")
    ask = admin.post(url("staff:patron-delete", patron))
    assert ask.status_code == 200
    assert 'name="confirm" value="yes"' in ask.content.decode()
    assert Patron.objects.filter(pk=patron.pk).exists()
    done = admin.post(url("staff:patron-delete", patron), {"confirm": "yes"})
    assert done["Location"] == reverse("staff:patron-list")
    assert not Patron.objects.filter(pk=patron.pk).exists()
    assert AuditEvent.objects.filter(action="patron.deleted", patron_id=patron.pk).exists()
    assert admin.get(url("staff:patron-detail", patron)).status_code == 404


def test_download_returns_a_zip_attachment_and_is_audited(admin: Client, patron: Patron) -> None:
    assert admin.get(url("staff:patron-download", patron)).status_code == 405
    response = admin.post(url("staff:patron-download", patron))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"].startswith("attachment; filename=")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert "Hopper" in archive.read("patron.json").decode()
    assert AuditEvent.objects.filter(action="patron.exported", patron_id=patron.pk).count() == 1


def test_a_double_submitted_payment_records_one_payment(admin: Client, patron: Patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="5.00")
    html = admin.get(url("staff:patron-debts", patron)).content.decode()
    match = re.search(r'name="pay-idempotency_key" value="([0-9a-f]+)"', html)
    assert match
    form = {"pay-amount": "2.00", "pay-method": "card", "pay-idempotency_key": match.group(1)}
    first = admin.post(url("staff:patron-take-payment", patron), form, follow=True)
    second = admin.post(url("staff:patron-take-payment", patron), form, follow=True)
    assert "Payment of 2.00 USD recorded." in first.content.decode()
    assert "already recorded" in second.content.decode()
    assert Payment.objects.filter(patron=patron).count() == 1
    assert "Balance: <strong>3.00 USD</strong>" in second.content.decode()
    assert match.group(1) not in second.content.decode()  # the next payment gets a new key


def test_debts_forms_show_field_errors(admin: Client, patron: Patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="5.00")
    too_much = admin.post(
        url("staff:patron-take-payment", patron),
        {"pay-amount": "9.00", "pay-method": "cash", "pay-idempotency_key": "k9"},
    )
    assert too_much.status_code == 400
    assert 'id="f-pay-amount-error"' in too_much.content.decode()
    assert 'value="k9"' in too_much.content.decode()
    no_reason = admin.post(
        url("staff:patron-waive-fee", patron), {"waive-fee": str(patron.fees.get().pk), "waive-reason": ""}
    )
    assert no_reason.status_code == 400
    assert 'id="f-waive-reason-error"' in no_reason.content.decode()
    bad_fee = admin.post(url("staff:patron-add-fee", patron), {"fee-amount": "-1"})
    assert bad_fee.status_code == 400
    assert 'id="f-fee-amount-error"' in bad_fee.content.decode()
    assert not Payment.objects.exists()


def test_waiving_another_patrons_fee_through_this_patron_is_refused(
    admin: Client, library: Library, patron: Patron
) -> None:
    other = make_patron(library)
    fee = fines.add_fee(actor=SYSTEM, patron=other, amount="4.00")
    response = admin.post(url("staff:patron-waive-fee", patron), {"waive-fee": str(fee.pk), "waive-reason": "x"})
    assert response.status_code == 400
    assert not fee.waivers.exists()


def test_history_tab_lists_this_patrons_events(admin: Client, patron: Patron, library: Library) -> None:
    other = make_patron(library, last_name="Elsewhere")
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="Lost ID")
    html = admin.get(url("staff:patron-history", patron)).content.decode()
    assert "patron.blocked" in html
    assert "patron.created" in html
    assert "patron.read" in html  # opening the tab is itself audited
    # One row per event of this patron, none of the other patron's.
    assert html.count("<code>") == AuditEvent.objects.filter(patron_id=patron.pk).count()
    assert AuditEvent.objects.filter(patron_id=other.pk).exists()


def test_the_patron_may_choose_to_keep_their_lending_history(admin: Client, patron: Patron) -> None:
    section = url("staff:patron-edit-section", patron, section="membership")
    form = admin.get(section).content.decode()
    assert 'name="keep_lending_history"' in form
    base = {"patron_type": patron.patron_type_id, "registered_branch": patron.registered_branch_id,
            "status": "active", "expires_on": "2031-01-31"}  # fmt: skip
    assert admin.post(section, {**base, "keep_lending_history": "1"}).status_code == 302
    patron.refresh_from_db()
    assert patron.keep_lending_history is True
    assert "Keep lending history</dt><dd>Yes" in admin.get(url("staff:patron-detail", patron)).content.decode()
    event = AuditEvent.objects.filter(action="patron.updated", patron_id=patron.pk).latest("at")
    assert "keep_lending_history" in event.detail["fields"]
    admin.post(section, base)  # an unticked box is not sent: the choice is withdrawn
    patron.refresh_from_db()
    assert patron.keep_lending_history is False
