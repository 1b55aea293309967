"""Pure money rules of the ledger: no Django, no clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class OpenFee:
    fee_id: int
    outstanding: Decimal


def allocate_oldest_first(amount: Decimal, fees: Sequence[OpenFee]) -> list[tuple[int, Decimal]]:
    """Split a payment over the open fees, oldest first. ``fees`` must come oldest first.

    The payment must not exceed the sum outstanding; the caller refuses that case before.
    """
    left = amount
    allocations: list[tuple[int, Decimal]] = []
    for fee in fees:
        if left <= 0:
            break
        if fee.outstanding <= 0:
            continue
        part = min(left, fee.outstanding)
        allocations.append((fee.fee_id, part))
        left -= part
    if left > 0:
        raise ValueError("payment exceeds the outstanding fees")
    return allocations
