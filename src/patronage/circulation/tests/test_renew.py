"""Renewing a checkout: one more loan period, unless standing forbids it or someone else booked the resource."""

from __future__ import annotations

import pytest

from patronage.blocks import services as blocks
from patronage.circulation import services as desk
from patronage.circulation.models import Checkout
from patronage.core import clock
from patronage.core.errors import Conflict, Refused
from patronage.core.models import AuditEvent
from patronage.reservations import services as reservations
from patronage.reservations.models import Occupancy, Reservation
from patronage.resources.tests.builders import at
from tests.factories import SYSTEM, make_patron

from .conftest import book

pytestmark = pytest.mark.django_db


def _out(lab, start=(10, 10), end=(10, 12)) -> Checkout:
    made = book(lab, at(*start), at(*end))
    with clock.frozen(at(*start)):
        return desk.check_out(actor=SYSTEM, reservation=made, scanned=["LAP-1"])


def test_renewal_makes_it_due_one_loan_period_from_now_and_moves_the_booking(lab) -> None:
    checkout = _out(lab)
    with clock.frozen(at(10, 11, 30)):
        renewed = desk.renew(actor=SYSTEM, checkout=checkout)
    assert renewed.due_at == at(10, 13, 30)
    assert Reservation.objects.get(pk=checkout.reservation_id).ends_at == at(10, 13, 30)
    assert Occupancy.objects.get(reservation_id=checkout.reservation_id, active=True).blocked_until == at(10, 13, 30)
    assert AuditEvent.objects.filter(action="checkout.renewed", patron_id=lab.patron.pk).count() == 1
    # The laptop is not free for someone else until the new due time.
    with pytest.raises(Refused):
        book(lab, at(10, 13), at(10, 14), patron=make_patron(lab.library))


def test_the_center_policy_caps_the_loan_period(lab) -> None:
    checkout = _out(lab)
    reservations.save_center_policy(actor=SYSTEM, center=lab.center, data={"max_duration_minutes": 60})
    with clock.frozen(at(10, 11, 30)):
        assert desk.renew(actor=SYSTEM, checkout=checkout).due_at == at(10, 12, 30)


def test_a_resource_booked_after_the_due_time_cannot_be_renewed(lab) -> None:
    checkout = _out(lab)
    book(lab, at(10, 13), at(10, 15), patron=make_patron(lab.library))
    with clock.frozen(at(10, 11, 30)), pytest.raises(Conflict) as refused:
        desk.renew(actor=SYSTEM, checkout=checkout)
    assert refused.value.code == "resource_booked_after"
    assert Checkout.objects.get(pk=checkout.pk).due_at == at(10, 12)
    assert Occupancy.objects.get(reservation_id=checkout.reservation_id, active=True).blocked_until == at(10, 12)


def test_standing_that_forbids_renew_is_refused_with_its_reasons(lab) -> None:
    checkout = _out(lab)
    blocks.block_patron(actor=SYSTEM, patron=lab.patron, comment="Card reported stolen")
    with clock.frozen(at(10, 11, 30)), pytest.raises(Refused) as refused:
        desk.renew(actor=SYSTEM, checkout=checkout)
    assert [r["code"] for r in refused.value.reasons] == ["blocked_by_staff"]
    assert Checkout.objects.get(pk=checkout.pk).due_at == at(10, 12)


def test_a_returned_checkout_cannot_be_renewed(lab) -> None:
    checkout = _out(lab)
    with clock.frozen(at(10, 11)):
        desk.check_in(actor=SYSTEM, checkout=checkout)
        with pytest.raises(Conflict) as refused:
            desk.renew(actor=SYSTEM, checkout=checkout)
    assert refused.value.code == "checkout_completed"
