"""Field validation for patron data, shared by every face through the services.

Each function returns the cleaned value or raises ``FieldError`` naming the field and the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import models

from patronage.core.errors import FieldError, ValidationFailed

BARCODE_RE = re.compile(r"^[A-Za-z0-9-]{4,64}$")


def clean_phone(value: str, region: str, *, field: str = "phone") -> str:
    """A phone number in E.164 form, parsed for the library's country when it has no prefix."""
    text = value.strip()
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise FieldError(
            field, f"{text[:40]!r} is not a phone number; enter it as dialled, e.g. +1 555 555 0123."
        ) from None
    if not phonenumbers.is_valid_number(number):
        country = phonenumbers.region_code_for_number(number) or region
        raise FieldError(
            field, f"{text[:40]!r} is not a valid phone number for {country}; check the digits and prefix."
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_barcode(value: str, *, field: str = "barcode") -> str:
    text = value.strip()
    if not BARCODE_RE.match(text):
        raise FieldError(field, "A barcode is 4 to 64 letters, digits or '-', e.g. 23456000012345.")
    return text


def clean_model_fields(
    model: type[models.Model], data: Mapping[str, Any], fields: Iterable[str], *, prefix: str = ""
) -> dict[str, Any]:
    """Run each model field's own validation (length, choices, e-mail syntax, dates) on ``data``.

    Collects every error before raising, so a form shows them all at once. Only keys present in
    ``data`` are cleaned; callers decide which are required.
    """
    cleaned: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name in fields:
        if name not in data:
            continue
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field)  # noqa: S101 - narrows the type; callers name concrete fields
        value = data[name]
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None):
            if isinstance(field, models.BooleanField):
                cleaned[name] = False
            elif field.null:
                cleaned[name] = None
            elif field.blank:
                cleaned[name] = ""
            else:
                errors[prefix + name] = ["This field is required."]
            continue
        try:
            cleaned[name] = field.clean(value, None)
        except ValidationError as exc:
            errors[prefix + name] = [_sentence(m) for m in exc.messages]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _sentence(message: str) -> str:
    message = message.strip()
    return message if message.endswith(".") else message + "."
