"""Changes to the debt ledger: fees, payments (idempotent) and waivers."""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from patronage.core import audit, clock
from patronage.core.errors import Conflict, FieldError, ValidationFailed
from patronage.core.money import format_amount, parse_amount
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron

from . import queries
from .models import Fee, Payment, PaymentAllocation, Waiver
from .rules import allocate_oldest_first

MAX_KEY_LENGTH = 100


def _lock_patron(patron: Patron) -> Patron:
    # Every ledger write for one patron takes this row lock first, so two payments (or a payment
    # and a waiver) for the same patron are checked against the balance one after the other.
    return Patron.objects.select_for_update().select_related("library").get(pk=patron.pk)


def _text(value: object, field: str, *, required: bool, max_length: int) -> str:
    text = str(value or "").strip()
    if required and not text:
        raise FieldError(field, "This field is required.")
    if len(text) > max_length:
        raise FieldError(field, f"Use at most {max_length} characters (this has {len(text)}).")
    return text


def _branch(patron: Patron, branch: Branch | int | str | None) -> Branch | None:
    if branch in (None, ""):
        return None
    if isinstance(branch, Branch):
        branch = branch.pk
    found = Branch.objects.filter(library_id=patron.library_id, pk=int(str(branch)) if str(branch).isdigit() else -1)
    match = found.first()
    if match is None:
        raise FieldError("branch", "Unknown branch at this library; choose one from the list.")
    return match


@transaction.atomic
def add_fee(
    *,
    actor: audit.Actor,
    patron: Patron,
    amount: object,
    kind: str = Fee.Kind.OTHER,
    description: str = "",
    branch: Branch | int | str | None = None,
) -> Fee:
    patron = _lock_patron(patron)
    errors: dict[str, list[str]] = {}
    values: dict[str, object] = {}
    for field, check in (
        ("amount", lambda: parse_amount(amount, patron.library.currency)),
        ("kind", lambda: kind if kind in Fee.Kind.values else _bad_kind(kind)),
        ("description", lambda: _text(description, "description", required=False, max_length=500)),
        ("branch", lambda: _branch(patron, branch)),
    ):
        try:
            values[field] = check()
        except FieldError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    fee = Fee.objects.create(
        library_id=patron.library_id, patron=patron, created_at=clock.now(), created_by=actor.account, **values
    )
    audit.record(
        actor, "fee.added", library_id=patron.library_id, patron_id=patron.pk, patron_label=patron.display_name,
        fee_id=fee.pk, amount=str(fee.amount), kind=fee.kind,
    )  # fmt: skip
    return fee


def _bad_kind(kind: str) -> str:
    raise FieldError("kind", f"Unknown fee type {kind!r}; use one of {', '.join(Fee.Kind.values)}.")


def take_payment(
    *,
    actor: audit.Actor,
    patron: Patron,
    amount: object,
    method: str,
    idempotency_key: str,
    branch: Branch | int | str | None = None,
    note: str = "",
) -> tuple[Payment, bool]:
    """Record a payment, allocated to the open fees oldest first. Returns (payment, created).

    The same ``idempotency_key`` at one library records one payment however often and however
    concurrently it is sent; a replay with other details is refused as a conflict.
    """
    key = _text(idempotency_key, "idempotency_key", required=True, max_length=MAX_KEY_LENGTH)
    try:
        with transaction.atomic():
            return _take_payment(actor, patron, amount, method, key, branch, note)
    except IntegrityError:
        # A concurrent request with the same key committed between our check and our insert
        # (PostgreSQL); the unique constraint stopped the second row. Answer with the first.
        existing = Payment.objects.filter(library_id=patron.library_id, idempotency_key=key).first()
        if existing is None:
            raise
        return _replayed(existing, patron, parse_amount(amount, patron.library.currency), method), False


def _take_payment(
    actor: audit.Actor,
    patron: Patron,
    amount: object,
    method: str,
    key: str,
    branch: Branch | int | str | None,
    note: str,
) -> tuple[Payment, bool]:
    patron = _lock_patron(patron)
    value = parse_amount(amount, patron.library.currency)
    existing = Payment.objects.filter(library_id=patron.library_id, idempotency_key=key).first()
    if existing is not None:
        return _replayed(existing, patron, value, method), False
    errors: dict[str, list[str]] = {}
    if method not in Payment.Method.values:
        errors["method"] = [f"Unknown payment method {method!r}; use one of {', '.join(Payment.Method.values)}."]
    try:
        note = _text(note, "note", required=False, max_length=500)
        place = _branch(patron, branch)
    except FieldError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    owed = queries.balance(patron.pk)
    if value > owed:
        currency = patron.library.currency
        raise FieldError(
            "amount",
            f"The payment {format_amount(value, currency)} is more than the balance "
            f"{format_amount(max(owed, Decimal(0)), currency)}; take at most the balance.",
        )
    payment = Payment.objects.create(
        library_id=patron.library_id, patron=patron, branch=place, amount=value, method=method,
        idempotency_key=key, note=note, received_at=clock.now(), received_by=actor.account,
    )  # fmt: skip
    PaymentAllocation.objects.bulk_create(
        PaymentAllocation(payment=payment, fee_id=fee_id, amount=part)
        for fee_id, part in allocate_oldest_first(value, queries.open_fees(patron.pk))
    )
    audit.record(
        actor, "payment.taken", library_id=patron.library_id, patron_id=patron.pk, patron_label=patron.display_name,
        payment_id=payment.pk, amount=str(value), method=method,
    )  # fmt: skip
    return payment, True


def _replayed(existing: Payment, patron: Patron, amount: Decimal, method: str) -> Payment:
    if existing.patron_id != patron.pk or existing.amount != amount or existing.method != method:
        raise Conflict(
            "This idempotency key was already used for a different payment; send a new key for a new payment.",
            code="idempotency_key_reused",
        )
    return existing


@transaction.atomic
def waive_fee(*, actor: audit.Actor, fee: Fee, reason: str, amount: object | None = None) -> Waiver:
    """Forgive what is still owed on ``fee`` (or part of it, ``amount``), with a reason."""
    patron = _lock_patron(fee.patron)
    reason = _text(reason, "reason", required=True, max_length=500)
    outstanding = next(
        (f.amount - f.paid - f.waived for f in queries.fees_with_outstanding(patron.pk) if f.pk == fee.pk), Decimal(0)
    )
    currency = patron.library.currency
    if outstanding <= 0:
        raise FieldError("fee", "Nothing is owed on this fee any more; there is nothing to waive.")
    value = outstanding if amount in (None, "") else parse_amount(amount, currency)
    if value > outstanding:
        raise FieldError(
            "amount", f"At most {format_amount(outstanding, currency)} is owed on this fee; waive that or less."
        )
    waiver = Waiver.objects.create(
        library_id=patron.library_id, patron=patron, fee=fee, amount=value, reason=reason,
        waived_at=clock.now(), waived_by=actor.account,
    )  # fmt: skip
    audit.record(
        actor, "fee.waived", library_id=patron.library_id, patron_id=patron.pk, patron_label=patron.display_name,
        fee_id=fee.pk, waiver_id=waiver.pk, amount=str(value),
    )  # fmt: skip
    return waiver
