from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.apps import apps
from django.db import models

from patronage.blocks import services as blocks
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.patrons.models import Patron
from patronage.privacy import export
from patronage.privacy.services import DeletionRefused, delete_patron
from tests.factories import SYSTEM, make_library, make_patron

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
