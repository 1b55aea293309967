from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection

from patronage.core.errors import Conflict, FieldError, ValidationFailed
from patronage.core.models import AuditEvent
from patronage.fines import queries
from patronage.fines import services as fines
from patronage.fines.models import Fee, Payment, PaymentAllocation
from patronage.standing.rules import Action
from patronage.standing.services import decide
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library, make_patron

pytestmark = pytest.mark.django_db


@pytest.fixture
def patron():
    return make_patron(make_library())


@pytest.mark.parametrize(("owed", "may_borrow"), [("4.99", True), ("5.00", True), ("5.01", False)])
def test_the_fine_limit_is_checked_on_the_real_ledger(patron, owed: str, may_borrow: bool) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount=owed, kind="overdue")
    decision = decide(patron, Action.CHECK_OUT)
    assert decision.allowed is may_borrow
    if not may_borrow:
        assert decision.codes == ["fines_over_limit"]


def test_paying_a_cent_lifts_the_soft_block_by_itself(patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="3.00")
    fines.add_fee(actor=SYSTEM, patron=patron, amount="2.01")
    assert not decide(patron, Action.CHECK_OUT).allowed
    fines.take_payment(actor=SYSTEM, patron=patron, amount="0.01", method="cash", idempotency_key="k1")
    assert decide(patron, Action.CHECK_OUT).allowed
    assert queries.balance(patron.pk) == Decimal("5.00")


def test_payments_are_allocated_to_the_oldest_fee_first(patron) -> None:
    old = fines.add_fee(actor=SYSTEM, patron=patron, amount="2.00")
    new = fines.add_fee(actor=SYSTEM, patron=patron, amount="3.00")
    payment, created = fines.take_payment(
        actor=SYSTEM, patron=patron, amount="2.50", method="card", idempotency_key="a"
    )
    assert created
    parts = dict(PaymentAllocation.objects.filter(payment=payment).values_list("fee_id", "amount"))
    assert parts == {old.pk: Decimal("2.00"), new.pk: Decimal("0.50")}


def test_a_waiver_forgives_what_is_left_on_a_fee(patron) -> None:
    fee = fines.add_fee(actor=SYSTEM, patron=patron, amount="6.00")
    fines.take_payment(actor=SYSTEM, patron=patron, amount="1.00", method="cash", idempotency_key="w")
    waiver = fines.waive_fee(actor=SYSTEM, fee=fee, reason="Returned in good condition")
    assert waiver.amount == Decimal("5.00")
    assert queries.balance(patron.pk) == Decimal("0.00")
    with pytest.raises(FieldError, match="nothing to waive"):
        fines.waive_fee(actor=SYSTEM, fee=fee, reason="again")


@pytest.mark.parametrize(
    ("amount", "message"),
    [("-1", "positive"), ("0", "greater than zero"), ("1.005", "decimal places"), ("abc", "amount such as"),
     ("NaN", "finite"), ("1e9", "below")],
)  # fmt: skip
def test_bad_amounts_are_refused_with_a_reason_and_nothing_is_written(patron, amount: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        fines.add_fee(actor=SYSTEM, patron=patron, amount=amount)
    assert message in refused.value.errors["amount"][0]
    assert not Fee.objects.exists()


def test_a_payment_above_the_balance_is_refused(patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="2.00")
    with pytest.raises(FieldError, match="more than the balance"):
        fines.take_payment(actor=SYSTEM, patron=patron, amount="2.01", method="cash", idempotency_key="x")
    assert not Payment.objects.exists()


def test_the_same_idempotency_key_records_one_payment(patron) -> None:
    fines.add_fee(actor=SYSTEM, patron=patron, amount="4.00")
    first, created_first = fines.take_payment(
        actor=SYSTEM, patron=patron, amount="1.00", method="cash", idempotency_key="same"
    )
    again, created_again = fines.take_payment(
        actor=SYSTEM, patron=patron, amount="1.00", method="cash", idempotency_key="same"
    )
    assert (created_first, created_again) == (True, False)
    assert first.pk == again.pk
    assert queries.balance(patron.pk) == Decimal("3.00")
    with pytest.raises(Conflict):
        fines.take_payment(actor=SYSTEM, patron=patron, amount="2.00", method="cash", idempotency_key="same")
    assert AuditEvent.objects.filter(action="payment.taken").count() == 1


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_with_one_key_record_one_payment() -> None:
    patron = make_patron(make_library())
    fines.add_fee(actor=SYSTEM, patron=patron, amount="10.00")
    workers = 6

    def pay(_index: int) -> tuple[Payment, bool]:
        return fines.take_payment(actor=SYSTEM, patron=patron, amount="2.00", method="card", idempotency_key="once")

    taken, errors = split(at_once(pay, workers))
    assert not errors, errors
    payments = {r[0].pk for r in taken}
    assert len(payments) == 1
    assert sum(1 for r in taken if r[1]) == 1
    assert Payment.objects.count() == 1
    assert queries.balance(patron.pk) == Decimal("8.00")
    assert connection.vendor in {"sqlite", "postgresql"}
