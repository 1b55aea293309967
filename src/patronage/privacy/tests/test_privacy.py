from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.apps import apps
from django.db import models
from django.test import Client

from patronage.api.tokens import create_token
from patronage.blocks import services as blocks
from patronage.circulation import services as desk
from patronage.core import clock
from patronage.core.models import AuditEvent
from patronage.credentials import services as credentials
from patronage.fines import services as fines
from patronage.libraries.permissions import Permission
from patronage.outbox import services as outbox
from patronage.patrons.models import Patron
from patronage.privacy import export
from patronage.privacy.services import DeletionRefused, delete_patron
from patronage.reservations import services as reservations
from patronage.reservations.models import Reservation
from patronage.resources.tests.builders import NOW, at, make_center, make_resource, make_type
from tests.factories import SYSTEM, make_library, make_patron, make_staff

pytestmark = pytest.mark.django_db


def _refers_to_patron(model: type[models.Model], seen: frozenset[type[models.Model]] = frozenset()) -> bool:
    for field in model._meta.concrete_fields:
        target = field.related_model if field.is_relation else None
        if target is Patron:
            return True
        if (
            isinstance(target, type)
            and target not in seen
            and target is not model
            and issubclass(target, models.Model)
            and target._meta.app_label not in {"libraries", "auth", "contenttypes"}
            and _refers_to_patron(target, seen | {model})
        ):
            return True
    return False


def test_every_model_holding_patron_data_is_in_the_download() -> None:
    exported = {section.model for section in export.SECTIONS}
    holding = {m for m in apps.get_models() if m is not Patron and _refers_to_patron(m)}
    missing = sorted(m._meta.label for m in holding - exported)
    assert not missing, f"add these to privacy.export.SECTIONS: {missing}"


def test_the_download_holds_the_record_and_everything_attached() -> None:
    patron = make_patron(make_library(), phones={"mobile": "+1 202 555 0143"})
    fee = fines.add_fee(actor=SYSTEM, patron=patron, amount="3.00", description="Late laptop")
    fines.take_payment(actor=SYSTEM, patron=patron, amount="1.00", method="cash", idempotency_key="d1")
    fines.waive_fee(actor=SYSTEM, fee=fee, reason="Goodwill", amount="1.00")
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="Check ID")
    name, content = export.export_archive(actor=SYSTEM, patron=patron)
    assert name.endswith(".zip")
    archive = zipfile.ZipFile(io.BytesIO(content))
    data = json.loads(archive.read("patron.json"))
    assert data["patron"]["last_name"] == patron.last_name
    assert [b["number"] for b in data["barcodes"]] == [patron.barcodes.get().number]
    assert data["phones"][0]["number"] == "+12025550143"
    assert data["fees"][0]["description"] == "Late laptop"
    assert len(data["payments"]) == len(data["waivers"]) == len(data["payment_allocations"]) == 1
    assert data["blocks"][0]["comment"] == "Check ID"
    assert "Late laptop" in archive.read("summary.txt").decode()
    assert AuditEvent.objects.filter(action="patron.exported", patron_id=patron.pk).exists()


def test_the_download_says_a_portal_password_is_set_without_giving_away_any_secret() -> None:
    patron = make_patron(make_library())
    credentials.set_password(patron, "a long and unusual passphrase", actor=SYSTEM)
    link, token = credentials.issue_link(patron)

    _, content = export.export_archive(actor=SYSTEM, patron=patron)

    archive = zipfile.ZipFile(io.BytesIO(content))
    text = archive.read("patron.json").decode()
    data = json.loads(text)
    assert len(data["portal_credential"]) == 1
    assert "set_at" in data["portal_credential"][0]
    assert [row["purpose"] for row in data["password_links"]] == [link.purpose]
    stored = patron.credential.password
    for secret in (stored, stored.rsplit("$", 1)[-1], link.salt, link.digest, token):
        assert secret not in text
        assert secret not in archive.read("summary.txt").decode()


def test_deletion_is_refused_while_the_patron_owes_money_and_allowed_when_clear() -> None:
    patron = make_patron(make_library())
    fines.add_fee(actor=SYSTEM, patron=patron, amount="0.50")
    with pytest.raises(DeletionRefused) as refused:
        delete_patron(actor=SYSTEM, patron=patron)
    assert [r["code"] for r in refused.value.reasons] == ["has_debts"]
    assert Patron.objects.filter(pk=patron.pk).exists()
    fines.take_payment(actor=SYSTEM, patron=patron, amount="0.50", method="cash", idempotency_key="del")
    delete_patron(actor=SYSTEM, patron=patron)
    assert not Patron.objects.filter(pk=patron.pk).exists()


def test_a_blocked_patron_without_debts_can_be_deleted() -> None:
    patron = make_patron(make_library())
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="x")
    delete_patron(actor=SYSTEM, patron=patron)
    assert not Patron.objects.filter(pk=patron.pk).exists()


def test_after_deletion_the_audit_keeps_events_without_the_name() -> None:
    patron = make_patron(make_library(), last_name="Hopper")
    patron_id = patron.pk
    delete_patron(actor=SYSTEM, patron=patron)
    events = AuditEvent.objects.filter(patron_id=patron_id)
    assert {e.action for e in events} >= {"patron.created", "patron.deleted"}
    assert not any("Hopper" in (e.patron_label + json.dumps(e.detail)) for e in events)


def test_deleting_at_one_library_leaves_the_account_at_another() -> None:
    here = make_patron(make_library(), person_id="P-7")
    there = make_patron(make_library(), person_id="P-7")
    delete_patron(actor=SYSTEM, patron=here)
    assert Patron.objects.filter(pk=there.pk).exists()


# --- lending history retention -------------------------------------------------------------------------------


def test_the_choice_to_keep_lending_history_is_exported_audited_and_set_through_the_api() -> None:

    library = make_library()
    patron = make_patron(library)
    assert export.patron_data(patron)["patron"]["keep_lending_history"] is False
    token = create_token(user=make_staff(library, [Permission.VIEW_PATRONS, Permission.EDIT_PATRON]), name="t",
                         expires_at=None)[1]  # fmt: skip
    response = Client().patch(
        f"/api/v1/patrons/{patron.pk}/", data=json.dumps({"keep_lending_history": True}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    assert response.json()["keep_lending_history"] is True
    patron.refresh_from_db()
    assert patron.keep_lending_history is True
    assert export.patron_data(patron)["patron"]["keep_lending_history"] is True
    event = AuditEvent.objects.filter(action="patron.updated", patron_id=patron.pk).latest("at")
    assert event.detail["fields"] == ["keep_lending_history"]
    assert event.detail["section"] == "membership"


def test_the_library_period_is_readable_in_the_api() -> None:
    library = make_library()
    token = create_token(user=make_staff(library, [Permission.VIEW_PATRONS]), name="t", expires_at=None)[1]
    body = Client().get("/api/v1/libraries/", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    assert [lib["lending_history_retention_days"] for lib in body] == [365]


def test_deletion_keeps_finished_history_without_the_person_and_open_history_still_refuses() -> None:
    library = make_library()
    center = make_center(library)
    laptop = make_resource(library, make_type(library, "Laptops", centers=[center]), center, identifier="LAP-1")
    patron = make_patron(library)
    with clock.frozen(NOW):
        done = reservations.create_reservation(
            actor=SYSTEM, patron=patron, center=center, starts_at=at(10, 10), ends_at=at(10, 12),
            lines=[{"resource": laptop.pk}], title="Hopper family visit",
        )  # fmt: skip
        with clock.frozen(at(10, 10)):
            checkout = desk.check_out(actor=SYSTEM, reservation=done, scanned=["LAP-1"])
        with clock.frozen(at(10, 11)):
            desk.check_in(actor=SYSTEM, checkout=checkout)
        still_open = reservations.create_reservation(
            actor=SYSTEM, patron=patron, center=center, starts_at=at(11, 10), ends_at=at(11, 12),
            lines=[{"resource": laptop.pk}],
        )  # fmt: skip
        with pytest.raises(DeletionRefused) as refused:
            delete_patron(actor=SYSTEM, patron=patron)
        assert "has_open_reservations" in {r["code"] for r in refused.value.reasons}
        assert Reservation.objects.get(pk=done.pk).patron_id == patron.pk  # the refusal changed nothing
        reservations.cancel_reservation(actor=SYSTEM, reservation=still_open)
        delete_patron(actor=SYSTEM, patron=patron)
    kept = Reservation.objects.filter(pk__in=[done.pk, still_open.pk])
    assert [(r.patron_id, r.title, r.state) for r in kept.order_by("pk")] == [
        (None, "", "completed"), (None, "", "cancelled"),
    ]  # fmt: skip
    assert type(checkout).objects.get(pk=checkout.pk).patron_id is None


def test_the_download_lists_emails_without_their_text_and_deletion_stops_waiting_ones() -> None:
    patron = make_patron(make_library())
    secret_link = "https://library.example/portal/x/set-password/SECRETTOKEN/"
    message = outbox.enqueue(
        kind="password_link_set", to=[patron.primary_email or "grace@example.org"], subject="Choose your password",
        text=f"Open {secret_link}", library=patron.library_id, patron_id=patron.pk, wake=False,
    )  # fmt: skip
    assert message is not None

    _, content = export.export_archive(actor=SYSTEM, patron=patron)
    text = zipfile.ZipFile(io.BytesIO(content)).read("patron.json").decode()
    assert [row["subject"] for row in json.loads(text)["emails"]] == ["Choose your password"]
    assert "SECRETTOKEN" not in text

    delete_patron(actor=SYSTEM, patron=patron)
    message.refresh_from_db()
    assert (message.to, message.text, message.state) == ([], "", "failed")
    assert "deleted" in message.last_error
