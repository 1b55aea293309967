"""Form fields of the staff pages, described as data and bound to values and errors for the templates.

Validation stays in the domain services; these only say how a field looks (label, input type, help)
and carry back what the user typed and what the service said about it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from patronage.patrons.models import Address, Patron, Phone

Choices = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: str
    kind: str = "text"  # text, email, tel, date, datetime-local, select, checkbox, textarea
    required: bool = False
    help: str = ""
    choices: Choices = ()
    autocomplete: str = ""


@dataclass
class BoundField:
    spec: FieldSpec
    html_name: str
    value: str
    errors: list[str] = field(default_factory=list)
    choices: Choices = ()

    @property
    def id(self) -> str:
        return f"f-{self.html_name}"

    @property
    def help_id(self) -> str:
        return f"{self.id}-help"

    @property
    def error_id(self) -> str:
        return f"{self.id}-error"

    @property
    def describedby(self) -> str:
        ids = [self.error_id] if self.errors else []
        if self.spec.help:
            ids.append(self.help_id)
        return " ".join(ids)

    @property
    def checked(self) -> bool:
        return self.value not in ("", "0", "False", "false", "None")


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if hasattr(value, "pk"):
        return str(value.pk)
    return str(value)


def bind(
    specs: Iterable[FieldSpec],
    values: Mapping[str, Any],
    errors: Mapping[str, Sequence[str]] | None = None,
    *,
    prefix: str = "",
    choices: Mapping[str, Choices] | None = None,
) -> list[BoundField]:
    errors = errors or {}
    choices = choices or {}
    bound = []
    for spec in specs:
        name = prefix + spec.name
        bound.append(
            BoundField(
                spec=spec,
                html_name=name,
                value=as_text(values.get(name)),
                errors=list(errors.get(name, ())),
                choices=choices.get(spec.name, spec.choices),
            )
        )
    return bound


def error_summary(errors: Mapping[str, Sequence[str]], fields: Iterable[BoundField]) -> list[dict[str, str]]:
    """Every error once, linked to its field when the form shows that field."""
    by_name = {f.html_name: f for f in fields}
    summary = []
    for name, messages in errors.items():
        bound = by_name.get(name)
        for message in messages:
            summary.append(
                {
                    "label": bound.spec.label if bound else "",
                    "message": message,
                    "href": f"#{bound.id}" if bound else "",
                }
            )
    return summary


IDENTITY = (
    FieldSpec("first_name", "First name", required=True, autocomplete="off"),
    FieldSpec("last_name", "Last name", required=True, autocomplete="off"),
    FieldSpec("birth_date", "Birth date", kind="date", help="Year-month-day, e.g. 1990-04-23."),
    FieldSpec("person_id", "Person-ID", help="The institution's id for this person, if any."),
)
CONTACT = (
    FieldSpec("primary_email", "Primary e-mail", kind="email"),
    FieldSpec("alternate_email", "Alternate e-mail", kind="email"),
    FieldSpec(
        "notification_method", "Notification method", kind="select", choices=tuple(Patron.NotificationMethod.choices)
    ),
    FieldSpec(
        "opt_out_almost_overdue",
        "No almost-overdue reminders",
        kind="checkbox",
        help="Reminders before items are due; honoured if the library lets patrons opt out.",
    ),
    FieldSpec(
        "opt_out_record_expiration",
        "No expiry reminders",
        kind="checkbox",
        help="Reminders before the record expires; honoured if the library lets patrons opt out.",
    ),
    FieldSpec(
        "opt_out_inactive",
        "No inactive-patron notices",
        kind="checkbox",
        help="Notices about an unused account; honoured if the library lets patrons opt out.",
    ),
)
PHONES = tuple(
    FieldSpec(f"phone_{kind}", f"{label} phone", kind="tel", help="As dialled, e.g. +1 202 555 0143.")
    for kind, label in Phone.Kind.choices
)
MEMBERSHIP = (
    FieldSpec("patron_type", "Patron type", kind="select", required=True),
    FieldSpec("registered_branch", "Registered branch", kind="select", required=True),
    FieldSpec("status", "Status", kind="select", choices=tuple(Patron.Status.choices)),
    FieldSpec("expires_on", "Expiry date", kind="date", required=True),
    FieldSpec("signature_on_file", "Signature on file", kind="checkbox"),
    FieldSpec(
        "keep_lending_history",
        "Keep lending history",
        kind="checkbox",
        help="The patron asked to keep their completed reservations and checkouts beyond the library's "
        "retention period; otherwise older ones are anonymised.",
    ),
)
NOTES = (
    FieldSpec("staff_notes", "Staff notes", kind="textarea", help="Seen by staff only; at most 5,000 characters."),
)
ADDRESS = (
    FieldSpec("line1", "Street address", autocomplete="off"),
    FieldSpec("line2", "Address line 2", autocomplete="off"),
    FieldSpec("city", "City"),
    FieldSpec("region", "State or region"),
    FieldSpec("postal_code", "Postal code"),
    FieldSpec("country", "Country", help="Two-letter code, e.g. US."),
)
ADDRESS_KINDS: Choices = tuple(Address.Kind.choices)
NEW_BARCODE = (
    FieldSpec(
        "barcode", "New barcode", required=True, help="4 to 64 letters, digits or '-'. The current one becomes history."
    ),
)

# The sections of the patron data tab, in the order they are shown.
SECTION_TITLES: dict[str, str] = {
    "identity": "Identity",
    "contact": "Contact",
    "addresses": "Addresses",
    "membership": "Membership",
    "notes": "Notes",
    "barcodes": "Barcodes",
}

NEW_PATRON = (
    *IDENTITY,
    FieldSpec("primary_email", "Primary e-mail", kind="email"),
    FieldSpec("phone_mobile", "Mobile phone", kind="tel", help="As dialled, e.g. +1 202 555 0143."),
    FieldSpec("patron_type", "Patron type", kind="select", required=True),
    FieldSpec("registered_branch", "Registered branch", kind="select", required=True),
    FieldSpec("expires_on", "Expiry date", kind="date", help="Leave empty to use the patron type's period."),
    FieldSpec("barcode", "Barcode", help="4 to 64 letters, digits or '-'; can be issued later."),
)

BLOCK = (
    FieldSpec(
        "comment", "Comment", kind="textarea", required=True, help="Why the patron is blocked; kept with the block."
    ),
    FieldSpec(
        "ends_at",
        "Block ends",
        kind="datetime-local",
        help="Optional, in the library's time zone. Empty: until lifted.",
    ),
)
UNBLOCK = (FieldSpec("comment", "Comment", kind="textarea", required=True, help="Why the block is lifted."),)

ADD_FEE = (
    FieldSpec("amount", "Amount", required=True, help="E.g. 2.50, in the library's currency."),
    FieldSpec("kind", "Fee type", kind="select"),
    FieldSpec("description", "Description"),
)
TAKE_PAYMENT = (
    FieldSpec("amount", "Amount", required=True, help="At most the balance."),
    FieldSpec("method", "Payment method", kind="select", required=True),
    FieldSpec("note", "Note"),
)
WAIVE_FEE = (
    FieldSpec("fee", "Fee", kind="select", required=True),
    FieldSpec("amount", "Amount", help="Empty: everything still owed on the fee."),
    FieldSpec("reason", "Reason", kind="textarea", required=True),
)
