"""Field validation for patron data, shared by every face through the services.

Each function returns the cleaned value or raises ``FieldError`` naming the field and the fix.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from patronage.core.errors import FieldError, ValidationFailed

BARCODE_RE = re.compile(r"^[A-Za-z0-9-]{4,64}$")


PHONE_MAX = 32  # ``Phone.number``'s length: an E.164 number has at most 16 characters, a typed one 32
NANP_CALLING_CODE = 1
# The three parts of a North American number, as the portal's three inputs take them.
NANP_PARTS = (("area", "area code", 3, "202"), ("prefix", "prefix", 3, "555"), ("line", "line number", 4, "0143"))


def phone_validation() -> bool:
    """Whether phone numbers are checked with phonenumbers: the system-level setting
    ``PATRONAGE_PHONE_VALIDATION`` (read on each call, so every face follows it at once)."""
    return bool(getattr(settings, "PATRONAGE_PHONE_VALIDATION", True))


def clean_phone(value: str, region: str, *, field: str = "phone", validate: bool | None = None) -> str:
    """A phone number as it is stored, or ``FieldError`` naming the field and the fix.

    With phone validation on (``validate`` None follows the setting) the number is parsed for the library's
    country when it has no ``+`` prefix and stored in E.164. With it off it is kept as typed: trimmed, at
    most 32 characters, no control characters, at least one digit. Both are checked by this one function,
    which every face reaches through ``patrons.services.clean_phones``.
    """
    text = str(value).strip()
    if not (phone_validation() if validate is None else validate):
        return clean_free_phone(text, field=field)
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


def clean_free_phone(value: str, *, field: str = "phone") -> str:
    """A phone number kept as typed (phone validation off): only what cannot be stored or read is refused."""
    text = str(value).strip()
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise FieldError(field, "Remove the tab, line break or other invisible character from the number.")
    if len(text) > PHONE_MAX:
        raise FieldError(field, f"Enter at most {PHONE_MAX} characters, e.g. 1 555 555 0123 ext 12.")
    if not any(c.isdigit() for c in text):
        raise FieldError(field, "Enter the number with its digits, e.g. 1 555 555 0123.")
    return text


def uses_three_part_entry(region: str) -> bool:
    """Whether the library's country uses the North American Numbering Plan (area code, prefix, line)."""
    return phonenumbers.country_code_for_region(region.upper()) == NANP_CALLING_CODE


def nanp_parts(number: str) -> dict[str, str] | None:
    """A stored North American number split into area code, prefix and line; None when it is not one."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    national = phonenumbers.national_significant_number(parsed)
    if parsed.country_code != NANP_CALLING_CODE or len(national) != 10 or parsed.extension:
        return None
    return {"area": national[:3], "prefix": national[3:6], "line": national[6:]}


class PhonePartsError(FieldError):
    """Some of the three parts of a number are wrong: one message per part, all on the number's field."""

    def __init__(self, field: str, problems: Sequence[tuple[str, str]]) -> None:
        super().__init__(field, problems[0][1])
        self.parts = [part for part, _ in problems]
        self.messages = [message for _, message in problems]

    @property
    def errors(self) -> dict[str, list[str]]:
        return {self.field: list(self.messages)}


def compose_nanp(parts: Mapping[str, str], *, field: str = "phone") -> str:
    """One number typed in three parts (area code, prefix, line number) as text for ``clean_phone``.

    "" when all three are empty (no number). ``PhonePartsError`` on ``field`` names each part that is
    missing, not digits, or of the wrong length; whether the whole is a real number is ``clean_phone``'s
    to say.
    """
    texts = {name: str(parts.get(name) or "").strip() for name, *_ in NANP_PARTS}
    if not any(texts.values()):
        return ""
    problems: list[tuple[str, str]] = []
    for name, label, size, example in NANP_PARTS:
        text = texts[name]
        if not text:
            problems.append((name, f"Enter the {label} ({size} digits, e.g. {example}), or leave all three empty."))
        elif not (text.isascii() and text.isdigit()) or len(text) != size:
            problems.append((name, f"The {label} is {size} digits, e.g. {example}; you entered {text[:12]!r}."))
    if problems:
        raise PhonePartsError(field, problems)
    return f"({texts['area']}) {texts['prefix']}-{texts['line']}"


def display_phone(number: str, region: str) -> str:
    """A stored number for people to read: the national format of the library's country when it is an
    E.164 number of that country, the international format for another country's, else the text as typed
    (phone validation was off when it was entered)."""
    text = str(number or "")
    if not text.startswith("+"):
        return text
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return text
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != text:
        return text  # typed with spaces or dashes while validation was off: shown as typed
    if not phonenumbers.is_valid_number(parsed):
        return text
    home = phonenumbers.country_code_for_region(str(region or "").upper())
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if parsed.country_code == home
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(parsed, style)


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
