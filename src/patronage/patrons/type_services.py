"""Configuring patron types: the one service that changes them.

It lives in the patron layer, next to the model, because ``patronage.libraries`` (where the other
configuration services are) may not import from the layer above it. It belongs with ``services.py``
and can move there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import IntegrityError, transaction

from patronage.core import audit
from patronage.core.errors import FieldError, NotFound, ValidationFailed
from patronage.core.money import parse_amount
from patronage.libraries.models import Library

from .models import PatronType
from .validation import clean_model_fields

TEXT_FIELDS = ("code", "name")
FLAGS = ("may_self_update", "may_use_ill")
MAX_EXPIRY_MONTHS = 1200
MAX_LOAN_LIMIT = 10_000
TRUE_TEXTS = frozenset({"1", "true", "on", "yes"})


def _whole_number(
    errors: dict[str, list[str]], field: str, value: object, *, low: int, high: int, example: str
) -> int | None:
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    if not text.isdigit() or not low <= int(text) <= high:
        errors[field] = [f"Enter a whole number from {low} to {high:,}, e.g. {example}."]
        return None
    return int(text)


def clean_patron_type(library: Library, patron_type: PatronType | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """The values for a patron type; a key left out keeps its current value (or the default)."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    texts = {f: data[f] for f in TEXT_FIELDS if f in data}
    if patron_type is None:
        texts = {f: data.get(f, "") for f in TEXT_FIELDS}
    try:
        values.update(clean_model_fields(PatronType, texts, TEXT_FIELDS))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if "fine_limit" in data:
        text = str(data["fine_limit"] if data["fine_limit"] is not None else "").strip()
        if not text:
            errors["fine_limit"] = ["Enter the fine limit, e.g. 5.00; with 0.00 any debt stops borrowing."]
        else:
            try:
                values["fine_limit"] = parse_amount(text, library.currency, field="fine_limit", allow_zero=True)
            except FieldError as exc:
                errors.update(exc.errors)
    if "expiry_months" in data:
        months = _whole_number(
            errors, "expiry_months", data["expiry_months"], low=1, high=MAX_EXPIRY_MONTHS, example="12"
        )
        if months is None and "expiry_months" not in errors:
            errors["expiry_months"] = ["Enter how many months a new or renewed record lasts, e.g. 12."]
        values["expiry_months"] = months
    if "loan_limit" in data:
        values["loan_limit"] = _whole_number(
            errors, "loan_limit", data["loan_limit"], low=0, high=MAX_LOAN_LIMIT, example="20"
        )
    for name in FLAGS:
        if name in data:
            value = data[name]
            values[name] = value if isinstance(value, bool) else str(value or "").strip().lower() in TRUE_TEXTS
    code = values.get("code")
    if code and "code" not in errors:
        taken = PatronType.objects.filter(library=library, code=code)
        if patron_type is not None:
            taken = taken.exclude(pk=patron_type.pk)
        if taken.exists():
            errors["code"] = [f"Another patron type of {library.name} has the code {code!r}; choose another."]
    if errors:
        raise ValidationFailed(errors)
    return values


@transaction.atomic
def save_patron_type(
    *, actor: audit.Actor, library: Library, patron_type: PatronType | None, data: Mapping[str, Any]
) -> PatronType:
    """Create a patron type of ``library`` (``patron_type`` None) or change one.

    A changed fine limit or ILL/self-update flag applies at once to every patron of the type: standing is
    computed from it each time, nothing is stored per patron.
    """
    if patron_type is not None and patron_type.library_id != library.pk:
        raise NotFound(f"There is no such patron type at {library.name}.")
    values = clean_patron_type(library, patron_type, data)
    created = patron_type is None
    if patron_type is None:
        patron_type = PatronType(library=library)
        changed = sorted(values)
    else:
        patron_type = PatronType.objects.select_for_update().get(pk=patron_type.pk)
        changed = sorted(name for name, value in values.items() if getattr(patron_type, name) != value)
    for name, value in values.items():
        setattr(patron_type, name, value)
    try:
        with transaction.atomic():
            patron_type.save()
    except IntegrityError:  # a concurrent save took the code between the check and the write
        raise FieldError("code", f"Another patron type of {library.name} has this code; choose another.") from None
    audit.record(
        actor, "patron_type.created" if created else "patron_type.updated", library_id=library.pk,
        patron_type_id=patron_type.pk, code=patron_type.code, fields=changed,
    )  # fmt: skip
    return patron_type
