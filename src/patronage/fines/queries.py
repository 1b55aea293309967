"""Reads of the ledger: balances and what is still owed per fee."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, TypedDict

from django.db.models import DecimalField, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from .models import Fee, Payment, PaymentAllocation, Waiver
from .rules import OpenFee

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations


class _Settled(TypedDict):
    paid: Decimal
    waived: Decimal


_ZERO = Value(Decimal("0"), output_field=DecimalField(max_digits=12, decimal_places=2))


def _total(queryset: QuerySet[Fee] | QuerySet[Payment] | QuerySet[Waiver]) -> Decimal:
    value = queryset.aggregate(total=Coalesce(Sum("amount"), _ZERO))["total"]
    return Decimal(value).quantize(Decimal("0.01"))


def balance(patron_id: int) -> Decimal:
    """What the patron owes at their library: fees - payments - waivers."""
    return (
        _total(Fee.objects.filter(patron_id=patron_id))
        - _total(Payment.objects.filter(patron_id=patron_id))
        - _total(Waiver.objects.filter(patron_id=patron_id))
    )


def fees_with_outstanding(patron_id: int) -> QuerySet[WithAnnotations[Fee, _Settled]]:
    """The patron's fees, oldest first, annotated with ``paid``, ``waived`` and ``outstanding``."""

    def summed(model: type[PaymentAllocation] | type[Waiver]) -> Subquery:
        rows = model.objects.filter(fee=OuterRef("pk")).values("fee").annotate(total=Sum("amount")).values("total")
        return Subquery(rows, output_field=DecimalField(max_digits=12, decimal_places=2))

    return (
        Fee.objects.filter(patron_id=patron_id)
        .annotate(paid=Coalesce(summed(PaymentAllocation), _ZERO), waived=Coalesce(summed(Waiver), _ZERO))
        .order_by("created_at", "id")
    )


def open_fees(patron_id: int) -> list[OpenFee]:
    result = []
    for fee in fees_with_outstanding(patron_id):
        outstanding = (fee.amount - fee.paid - fee.waived).quantize(Decimal("0.01"))
        if outstanding > 0:
            result.append(OpenFee(fee_id=fee.pk, outstanding=outstanding))
    return result
