"""Every action of the details window through the pages: allowed with its permission, refused (403,
nothing changed) without it, and not found (404) for a patron of another library."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.urls import reverse

from patronage.blocks import services as blocks
from patronage.blocks.models import Block
from patronage.core.models import AuditEvent
from patronage.fines import services as fines
from patronage.fines.models import Fee, Payment, Waiver
from patronage.libraries.models import Library
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron
from tests.factories import SYSTEM, make_patron

from .conftest import StaffClient

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Action:
    name: str
    permission: Permission
    method: str
    url_name: str
    audit_action: str
    done: Callable[[Patron], bool]
    data: Callable[[Patron], dict[str, Any]] = lambda patron: {}
    prepare: Callable[[Patron], None] = lambda patron: None


def _fee(patron: Patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="4.00", description="Late laptop")


def _block(patron: Patron) -> None:
    blocks.block_patron(actor=SYSTEM, patron=patron, comment="Lost ID")


ACTIONS = [
    Action(
        "view details", Permission.VIEW_PATRONS, "get", "staff:patron-detail", "patron.read",
        done=lambda p: AuditEvent.objects.filter(action="patron.read", patron_id=p.pk).exists(),
    ),
    Action(
        "edit section", Permission.EDIT_PATRON, "post", "staff:patron-edit-section", "patron.updated",
        data=lambda p: {"first_name": "Amazing", "last_name": "Grace", "birth_date": "", "person_id": ""},
        done=lambda p: Patron.objects.filter(pk=p.pk, first_name="Amazing").exists(),
    ),
    Action(
        "block", Permission.BLOCK_PATRON, "post", "staff:patron-block", "patron.blocked",
        data=lambda p: {"comment": "Lost ID", "ends_at": ""},
        done=lambda p: Block.objects.filter(patron_id=p.pk).exists(),
    ),
    Action(
        "unblock", Permission.BLOCK_PATRON, "post", "staff:patron-unblock", "patron.unblocked",
        prepare=_block,
        data=lambda p: {"comment": "ID found"},
        done=lambda p: Block.objects.filter(patron_id=p.pk, lifted_at__isnull=False).exists(),
    ),
    Action(
        "delete", Permission.DELETE_PATRON, "post", "staff:patron-delete", "patron.deleted",
        data=lambda p: {"confirm": "yes"},
        done=lambda p: not Patron.objects.filter(pk=p.pk).exists(),
    ),
    Action(
        "download", Permission.DOWNLOAD_PATRON_DATA, "post", "staff:patron-download", "patron.exported",
        done=lambda p: AuditEvent.objects.filter(action="patron.exported", patron_id=p.pk).exists(),
    ),
    Action(
        "add fee", Permission.ADD_FEES, "post", "staff:patron-add-fee", "fee.added",
        data=lambda p: {"fee-amount": "2.50", "fee-kind": "damage", "fee-description": "Torn page"},
        done=lambda p: Fee.objects.filter(patron_id=p.pk, amount="2.50").exists(),
    ),
    Action(
        "take payment", Permission.TAKE_PAYMENTS, "post", "staff:patron-take-payment", "payment.taken",
        prepare=_fee,
        data=lambda p: {"pay-amount": "1.00", "pay-method": "cash", "pay-idempotency_key": "k-1"},
        done=lambda p: Payment.objects.filter(patron_id=p.pk).exists(),
    ),
    Action(
        "waive", Permission.WAIVE_FEES, "post", "staff:patron-waive-fee", "fee.waived",
        prepare=_fee,
        data=lambda p: {"waive-fee": str(Fee.objects.get(patron_id=p.pk).pk), "waive-reason": "Goodwill"},
        done=lambda p: Waiver.objects.filter(patron_id=p.pk).exists(),
    ),
]  # fmt: skip
IDS = [a.name for a in ACTIONS]


def _url(action: Action, patron: Patron) -> str:
    kwargs: dict[str, Any] = {"pk": patron.pk}
    if action.url_name == "staff:patron-edit-section":
        kwargs["section"] = "identity"
    return reverse(action.url_name, kwargs=kwargs)


def _send(client: Any, action: Action, patron: Patron) -> Any:
    return getattr(client, action.method)(_url(action, patron), action.data(patron))


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_with_the_permission_the_action_is_done_and_audited(
    action: Action, staff_client: StaffClient, patron: Patron
) -> None:
    action.prepare(patron)
    client = staff_client([Permission.VIEW_PATRONS, action.permission])
    response = _send(client, action, patron)
    assert response.status_code in (200, 302), response.content[:500]
    assert action.done(patron)
    event = AuditEvent.objects.filter(action=action.audit_action, patron_id=patron.pk).latest("at")
    assert event.channel == "staff"
    assert event.actor_label.startswith("staff")


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_without_the_permission_the_action_is_refused_and_nothing_changes(
    action: Action, staff_client: StaffClient, patron: Patron
) -> None:
    action.prepare(patron)
    others = [p for p in Permission if p != action.permission]
    client = staff_client(others)
    response = _send(client, action, patron)
    assert response.status_code == 403
    assert action.permission.label in response.content.decode()
    assert not action.done(patron)


@pytest.mark.parametrize("action", ACTIONS, ids=IDS)
def test_for_a_patron_of_another_library_the_action_is_not_found(
    action: Action, staff_client: StaffClient, other_library: Library
) -> None:
    stranger = make_patron(other_library, first_name="Secret", last_name="Stranger")
    action.prepare(stranger)
    response = _send(staff_client(list(Permission)), action, stranger)
    assert response.status_code == 404
    assert "Stranger" not in response.content.decode()
    assert not action.done(stranger)


def test_buttons_appear_only_with_their_permission(staff_client: StaffClient, patron: Patron) -> None:
    url = reverse("staff:patron-detail", kwargs={"pk": patron.pk})
    bare = staff_client([Permission.VIEW_PATRONS]).get(url).content.decode()
    for label in ("Block patron", "Delete patron", "Download patron data", "Edit identity"):
        assert label not in bare
    full = staff_client(list(Permission)).get(url).content.decode()
    for label in ("Block patron", "Delete patron", "Download patron data", 'aria-label="Edit identity"'):
        assert label in full
    debts = reverse("staff:patron-debts", kwargs={"pk": patron.pk})
    assert "Take payment" not in staff_client([Permission.VIEW_PATRONS]).get(debts).content.decode()
    assert "Take payment" in staff_client(list(Permission)).get(debts).content.decode()
