from __future__ import annotations

from decimal import Decimal

import pytest

from patronage.fines.rules import OpenFee, allocate_oldest_first


def test_a_payment_settles_the_oldest_fee_first() -> None:
    fees = [OpenFee(1, Decimal("2.00")), OpenFee(2, Decimal("3.00")), OpenFee(3, Decimal("1.00"))]
    assert allocate_oldest_first(Decimal("4.00"), fees) == [(1, Decimal("2.00")), (2, Decimal("2.00"))]


def test_a_payment_larger_than_what_is_owed_is_an_error() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        allocate_oldest_first(Decimal("5.00"), [OpenFee(1, Decimal("2.00"))])
