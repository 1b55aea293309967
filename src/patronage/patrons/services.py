"""The only code that changes patron records. Each function is one transaction and one audit event."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, transaction

from patronage.core import audit, clock
from patronage.core.errors import FieldError, NotFound, ValidationFailed
from patronage.core.money import parse_amount
from patronage.core.values import flag
from patronage.libraries.models import Branch, Library

from .models import Address, Barcode, Patron, PatronType, Phone
from .validation import clean_barcode, clean_model_fields, clean_phone

# The sections of the patron data tab; each is edited and saved on its own.
SECTIONS: dict[str, tuple[str, ...]] = {
    "identity": ("first_name", "last_name", "birth_date", "person_id"),
    "contact": (
        "primary_email",
        "alternate_email",
        "notification_method",
        "opt_out_almost_overdue",
        "opt_out_record_expiration",
        "opt_out_inactive",
    ),
    "membership": (
        "patron_type",
        "registered_branch",
        "status",
        "expires_on",
        "signature_on_file",
        "keep_lending_history",
    ),
    "notes": ("staff_notes",),
}
PHONE_KINDS = tuple(Phone.Kind.values)
ADDRESS_FIELDS = ("line1", "line2", "city", "region", "postal_code", "country")
REQUIRED_ON_CREATE = ("first_name", "last_name", "patron_type", "registered_branch")


def _resolve_references(library: Library, data: dict[str, Any]) -> dict[str, Any]:
    """Patron type and branch may be given by id or code; both must belong to ``library``."""
    errors: dict[str, list[str]] = {}
    for key, model in (("patron_type", PatronType), ("registered_branch", Branch)):
        if key not in data:
            continue
        value = data[key]
        if isinstance(value, model):
            value = value.pk
        text = str(value).strip() if value is not None else ""
        match = None
        if text:
            query = model.objects.filter(library=library)
            match = query.filter(code=text).first()
            if match is None and text.isdigit():
                match = query.filter(pk=int(text)).first()
        if match is None:
            label = "patron type" if key == "patron_type" else "branch"
            errors[key] = [f"Unknown {label} {text[:40]!r} at {library.name}; choose one from the list."]
        else:
            data[key] = match
    if errors:
        raise ValidationFailed(errors)
    return data


def clean_section(library: Library, section: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the fields of one section; raises ``ValidationFailed`` listing every bad field."""
    if section not in SECTIONS:
        raise FieldError("section", f"Unknown section {section!r}; use one of {', '.join(SECTIONS)}.")
    fields = SECTIONS[section]
    raw = {k: v for k, v in data.items() if k in fields}
    refs = {k: raw.pop(k) for k in ("patron_type", "registered_branch") if k in raw}
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    try:
        cleaned.update(clean_model_fields(Patron, raw, fields))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        cleaned.update(_resolve_references(library, refs))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def clean_phones(
    library: Library, phones: Mapping[str, str | None], *, validate: bool | None = None
) -> dict[str, str | None]:
    """Phone numbers by kind as stored (None: remove that kind), or every refusal at once.

    The one place the system-level phone validation applies (``validation.clean_phone``): on, numbers are
    parsed for the library's country and stored in E.164; off, each is kept as typed. Portal changes,
    update requests and their verification, the staff pages, the API and the importer all come here, so a
    number one of them accepted is accepted by the others. ``validate`` None follows the setting (the
    importer passes it to its worker processes).
    """
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, str | None] = {}
    for kind, number in phones.items():
        if kind not in PHONE_KINDS:
            errors[f"phone_{kind}"] = [f"Unknown phone kind {kind!r}; use {', '.join(PHONE_KINDS)}."]
            continue
        if not number or not str(number).strip():
            cleaned[kind] = None
            continue
        try:
            cleaned[kind] = clean_phone(str(number), library.country, field=f"phone_{kind}", validate=validate)
        except FieldError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def clean_addresses(addresses: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    errors: dict[str, list[str]] = {}
    cleaned: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, address in enumerate(addresses):
        kind = str(address.get("kind") or Address.Kind.HOME)
        prefix = f"addresses.{position}."
        if kind not in Address.Kind.values:
            errors[prefix + "kind"] = [f"Unknown address kind {kind!r}; use {', '.join(Address.Kind.values)}."]
            continue
        if kind in seen:
            errors[prefix + "kind"] = [f"Only one {kind} address is kept; remove the duplicate."]
            continue
        seen.add(kind)
        data = {f: address.get(f, "") for f in ADDRESS_FIELDS}
        if not any(str(v or "").strip() for v in data.values()):
            continue  # an empty address form means "no address of this kind"
        try:
            values = clean_model_fields(Address, data, ADDRESS_FIELDS, prefix=prefix)
        except ValidationFailed as exc:
            errors.update(exc.errors)
            continue
        values["kind"] = kind
        if values.get("country"):
            values["country"] = str(values["country"]).upper()
        cleaned.append(values)
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _check_person_id(library: Library, person_id: str | None, exclude_pk: int | None) -> None:
    if not person_id:
        return
    clash = Patron.objects.filter(library=library, person_id=person_id)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise FieldError("person_id", "Another patron at this library has this Person-ID; check the number.")


def _check_barcode_free(library: Library, number: str) -> None:
    if Barcode.objects.filter(library=library, number=number).exists():
        raise FieldError("barcode", f"Barcode {number} is already in use at this library (now or in the past).")


def default_expiry(patron_type: PatronType, today: dt.date) -> dt.date:
    return today + relativedelta(months=patron_type.expiry_months)


@transaction.atomic
def create_patron(
    *,
    actor: audit.Actor,
    library: Library,
    data: Mapping[str, Any],
    barcode: str | None = None,
    phones: Mapping[str, str | None] | None = None,
    addresses: Sequence[Mapping[str, Any]] = (),
) -> Patron:
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for field in REQUIRED_ON_CREATE:
        if not str(data.get(field) or "").strip():
            errors[field] = ["This field is required."]
    for section in SECTIONS:
        try:
            values.update(clean_section(library, section, data))
        except ValidationFailed as exc:
            for key, messages in exc.errors.items():
                errors.setdefault(key, messages)
    cleaned_phones: dict[str, str | None] = {}
    cleaned_addresses: list[dict[str, Any]] = []
    for step in ("phones", "addresses", "barcode", "person_id"):
        try:
            if step == "phones":
                cleaned_phones = clean_phones(library, phones or {})
            elif step == "addresses":
                cleaned_addresses = clean_addresses(addresses)
            elif step == "barcode" and barcode:
                barcode = clean_barcode(barcode)
                _check_barcode_free(library, barcode)
            elif step == "person_id":
                _check_person_id(library, values.get("person_id"), None)
        except (FieldError, ValidationFailed) as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    now = clock.now()
    if not values.get("expires_on"):
        values["expires_on"] = default_expiry(values["patron_type"], clock.today(library.time_zone))
    patron = Patron(library=library, created_at=now, updated_at=now, **values)
    try:
        with transaction.atomic():
            patron.save()
    except IntegrityError:
        raise FieldError("person_id", "Another patron at this library has this Person-ID; check the number.") from None
    for kind, number in cleaned_phones.items():
        if number:
            Phone.objects.create(patron=patron, kind=kind, number=number)
    for address in cleaned_addresses:
        Address.objects.create(patron=patron, **address)
    if barcode:
        Barcode.objects.create(library=library, patron=patron, number=barcode, is_active=True, issued_at=now)
    audit.record(actor, "patron.created", library_id=library.pk, patron_id=patron.pk, patron_label=patron.display_name)
    return patron


def _lock(patron: Patron) -> Patron:
    """Re-read the patron under a row lock so concurrent edits of one patron queue up."""
    return Patron.objects.select_for_update().select_related("library").get(pk=patron.pk)


@transaction.atomic
def update_section(*, actor: audit.Actor, patron: Patron, section: str, data: Mapping[str, Any]) -> Patron:
    """Save one section of the patron data tab. Only fields of that section change."""
    patron = _lock(patron)
    values = clean_section(patron.library, section, data)
    if "person_id" in values:
        _check_person_id(patron.library, values["person_id"], patron.pk)
    changed = sorted(k for k, v in values.items() if getattr(patron, k) != v)
    for key, value in values.items():
        setattr(patron, key, value)
    patron.updated_at = clock.now()
    try:
        with transaction.atomic():
            patron.save()
    except IntegrityError:
        raise FieldError("person_id", "Another patron at this library has this Person-ID; check the number.") from None
    audit.record(
        actor, "patron.updated", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, section=section, fields=changed,
    )  # fmt: skip
    return patron


@transaction.atomic
def set_phones(*, actor: audit.Actor, patron: Patron, phones: Mapping[str, str | None]) -> Patron:
    patron = _lock(patron)
    cleaned = clean_phones(patron.library, phones)
    for kind, number in cleaned.items():
        if number:
            Phone.objects.update_or_create(patron=patron, kind=kind, defaults={"number": number})
        else:
            Phone.objects.filter(patron=patron, kind=kind).delete()
    patron.updated_at = clock.now()
    patron.save(update_fields=["updated_at"])
    audit.record(
        actor, "patron.updated", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, section="phones", fields=sorted(cleaned),
    )  # fmt: skip
    return patron


@transaction.atomic
def set_addresses(*, actor: audit.Actor, patron: Patron, addresses: Sequence[Mapping[str, Any]]) -> Patron:
    """Replace the patron's addresses with ``addresses`` (kinds left out are removed)."""
    patron = _lock(patron)
    cleaned = clean_addresses(addresses)
    kinds = [a["kind"] for a in cleaned]
    Address.objects.filter(patron=patron).exclude(kind__in=kinds).delete()
    for address in cleaned:
        Address.objects.update_or_create(patron=patron, kind=address["kind"], defaults=address)
    patron.updated_at = clock.now()
    patron.save(update_fields=["updated_at"])
    audit.record(
        actor, "patron.updated", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, section="addresses", fields=kinds,
    )  # fmt: skip
    return patron


@transaction.atomic
def issue_barcode(*, actor: audit.Actor, patron: Patron, number: str) -> Barcode:
    """Give the patron a new active barcode; the previous one stays as history, inactive."""
    patron = _lock(patron)
    number = clean_barcode(number)
    _check_barcode_free(patron.library, number)
    now = clock.now()
    Barcode.objects.filter(patron=patron, is_active=True).update(is_active=False, replaced_at=now)
    try:
        with transaction.atomic():
            barcode = Barcode.objects.create(
                library_id=patron.library_id, patron=patron, number=number, is_active=True, issued_at=now
            )
    except IntegrityError:
        raise FieldError("barcode", f"Barcode {number} is already in use at this library.") from None
    audit.record(
        actor, "barcode.issued", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name, barcode_id=barcode.pk,
    )  # fmt: skip
    return barcode


@transaction.atomic
def deactivate_barcode(*, actor: audit.Actor, patron: Patron) -> int:
    """Withdraw the active barcode (a lost card) without issuing a new one."""
    patron = _lock(patron)
    count = Barcode.objects.filter(patron=patron, is_active=True).update(is_active=False, replaced_at=clock.now())
    audit.record(
        actor, "barcode.deactivated", library_id=patron.library_id, patron_id=patron.pk,
        patron_label=patron.display_name,
    )  # fmt: skip
    return count


def section_of(field: str) -> str | None:
    return next((name for name, fields in SECTIONS.items() if field in fields), None)


@transaction.atomic
def update_patron(
    *,
    actor: audit.Actor,
    patron: Patron,
    data: Mapping[str, Any],
    phones: Mapping[str, str | None] | None = None,
    addresses: Sequence[Mapping[str, Any]] | None = None,
) -> Patron:
    """Change any fields of several sections at once: all of it is saved, or (on any error) none.

    Every bad field is reported together. ``phones`` sets or (with an empty value) clears the
    kinds given; ``addresses`` replaces the whole list.
    """
    unknown = sorted(k for k in data if section_of(k) is None)
    if unknown:
        known = ", ".join(f for fields in SECTIONS.values() for f in fields)
        raise ValidationFailed({k: [f"Unknown field; the patron's fields are {known}."] for k in unknown})
    patron = _lock(patron)
    touched = {s: {k: v for k, v in data.items() if section_of(k) == s} for s in SECTIONS}
    errors: dict[str, list[str]] = {}
    for section, values in touched.items():
        if values:
            try:
                cleaned = clean_section(patron.library, section, values)
                if "person_id" in cleaned:
                    _check_person_id(patron.library, cleaned["person_id"], patron.pk)
            except (FieldError, ValidationFailed) as exc:
                errors.update(exc.errors)
    try:
        if phones is not None:
            clean_phones(patron.library, phones)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        if addresses is not None:
            clean_addresses(addresses)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    for section, values in touched.items():
        if values:
            patron = update_section(actor=actor, patron=patron, section=section, data=values)
    if phones is not None:
        patron = set_phones(actor=actor, patron=patron, phones=phones)
    if addresses is not None:
        patron = set_addresses(actor=actor, patron=patron, addresses=addresses)
    return patron


# --- patron types ----------------------------------------------------------------------------------------

TYPE_TEXT_FIELDS = ("code", "name")
TYPE_FLAGS = ("may_self_update", "may_use_ill")
MAX_EXPIRY_MONTHS = 1200
MAX_LOAN_LIMIT = 10_000


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
    texts = {f: data[f] for f in TYPE_TEXT_FIELDS if f in data}
    if patron_type is None:
        texts = {f: data.get(f, "") for f in TYPE_TEXT_FIELDS}
    try:
        values.update(clean_model_fields(PatronType, texts, TYPE_TEXT_FIELDS))
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
    for name in TYPE_FLAGS:
        if name in data:
            value = data[name]
            values[name] = flag(value)
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
