"""The Debts tab: the ledger of one patron and the forms that add to it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from patronage.core.errors import FieldError, ValidationFailed
from patronage.core.money import format_amount
from patronage.fines import queries as fine_queries
from patronage.fines import services as fine_services
from patronage.fines.models import Fee, Payment
from patronage.libraries.permissions import Permission
from patronage.patrons.models import Patron

from .. import fields
from ..once import OnceOnly
from .detail import PatronPageView

# Each form of the tab names its fields with its own prefix, so ids stay unique on the page.
FORMS = {"fee": (fields.ADD_FEE, "fee-"), "pay": (fields.TAKE_PAYMENT, "pay-"), "waive": (fields.WAIVE_FEE, "waive-")}


def _prefixed(errors: Mapping[str, list[str]], prefix: str) -> dict[str, list[str]]:
    return {prefix + key: value for key, value in errors.items()}


@dataclass(frozen=True)
class FeeRow:
    fee: Fee
    outstanding: Decimal


def _fee_label(fee: Fee, outstanding: Decimal, currency: str) -> str:
    return f"{fee.get_kind_display()} {fee.description}: {format_amount(outstanding, currency)} owed"


class DebtsView(PatronPageView):
    form: str = ""
    posted: dict[str, str] | None = None

    def _page(
        self,
        patron: Patron,
        *,
        form: str = "",
        values: Mapping[str, Any] | None = None,
        errors: Mapping[str, list[str]] | None = None,
        status: int = 200,
    ) -> HttpResponse:
        currency = patron.library.currency
        fees = [
            FeeRow(fee, (fee.amount - fee.paid - fee.waived).quantize(Decimal("0.01")))
            for fee in fine_queries.fees_with_outstanding(patron.pk)
        ]
        open_fees = [row for row in fees if row.outstanding > 0]
        choices = {
            "kind": tuple(Fee.Kind.choices),
            "method": (("", "Choose a method"), *Payment.Method.choices),
            "fee": (
                ("", "Choose a fee"),
                *((str(row.fee.pk), _fee_label(row.fee, row.outstanding, currency)) for row in open_fees),
            ),
        }
        forms: dict[str, Any] = {}
        for name, (specs, prefix) in FORMS.items():
            mine = name == form
            bound = fields.bind(
                specs, (values or {}) if mine else {}, (errors or {}) if mine else {}, prefix=prefix, choices=choices
            )
            forms[name] = {"fields": bound, "errors": fields.error_summary(errors or {}, bound) if mine else []}
        # A fresh key per rendered form: submitting this form twice sends the same key and records one payment.
        key = (values or {}).get("pay-idempotency_key") if form == "pay" else None
        forms["pay"]["idempotency_key"] = key or uuid.uuid4().hex
        context = self.patron_context(patron, "debts") | {
            "fees": fees,
            "open_fees": open_fees,
            "payments": list(patron.payments.all()),
            "waivers": list(patron.waivers.select_related("fee")),
            "balance": fine_queries.balance(patron.pk),
            "currency": currency,
            "forms": forms,
        }
        return render(self.request, "staff/patron/debts.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self.load(read=True)
        return self._page(patron)

    def invalid_handler(self) -> Callable[[Mapping[str, list[str]]], HttpResponse] | None:
        patron, posted, form = self.patron, self.posted, self.form
        if patron is None or posted is None:
            return None
        prefix = FORMS[form][1]
        return lambda errors: self._page(patron, form=form, values=posted, errors=_prefixed(errors, prefix), status=400)

    def _take(self, request: HttpRequest, permission: Permission) -> Patron:
        patron = self.load(permission)
        self.posted = {key: request.POST.get(key, "") for key in request.POST if key != "csrfmiddlewaretoken"}
        return patron

    def _done(self, patron: Patron) -> HttpResponse:
        return HttpResponseRedirect(reverse("staff:patron-debts", kwargs={"pk": patron.pk}))


class AddFeeView(OnceOnly, DebtsView):
    http_method_names = ["post"]
    form = "fee"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self._take(request, Permission.ADD_FEES)
        p = self.posted or {}
        fee = fine_services.add_fee(
            actor=self.actor,
            patron=patron,
            amount=p.get("fee-amount", ""),
            kind=p.get("fee-kind", "") or Fee.Kind.OTHER,
            description=p.get("fee-description", ""),
        )
        messages.success(request, f"Fee of {format_amount(fee.amount, patron.library.currency)} added.")
        return self.done_once(reverse("staff:patron-debts", kwargs={"pk": patron.pk}))


class TakePaymentView(OnceOnly, DebtsView):
    http_method_names = ["post"]
    form = "pay"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self._take(request, Permission.TAKE_PAYMENTS)
        p = self.posted or {}
        if not p.get("pay-idempotency_key"):
            raise FieldError("amount", "The form was incomplete; reload the Debts tab and enter the payment again.")
        payment, created = fine_services.take_payment(
            actor=self.actor,
            patron=patron,
            amount=p.get("pay-amount", ""),
            method=p.get("pay-method", ""),
            idempotency_key=p["pay-idempotency_key"],
            note=p.get("pay-note", ""),
        )
        amount = format_amount(payment.amount, patron.library.currency)
        if created:
            messages.success(request, f"Payment of {amount} recorded.")
        else:
            messages.info(request, f"This payment of {amount} was already recorded; it was not taken twice.")
        return self.done_once(reverse("staff:patron-debts", kwargs={"pk": patron.pk}))


class WaiveFeeView(DebtsView):
    http_method_names = ["post"]
    form = "waive"

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        patron = self._take(request, Permission.WAIVE_FEES)
        p = self.posted or {}
        raw = p.get("waive-fee", "")
        # Only the fees of the patron just loaded through the gatekeeper can be picked.
        fee = fine_queries.fees_with_outstanding(patron.pk).filter(pk=int(raw) if raw.isdigit() else -1).first()
        if fee is None:
            raise ValidationFailed({"fee": ["Choose one of the patron's fees."]})
        waiver = fine_services.waive_fee(
            actor=self.actor, fee=fee, reason=p.get("waive-reason", ""), amount=p.get("waive-amount") or None
        )
        messages.success(request, f"Waived {format_amount(waiver.amount, patron.library.currency)}.")
        return self._done(patron)
