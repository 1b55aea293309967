"""Everything one library holds about one patron, as data and as a readable summary.

``SECTIONS`` lists every model that holds patron data. A test walks all installed models and
fails when one that refers to a patron is missing here, so a new feature cannot forget it.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import models

from patronage.blocks.models import Block
from patronage.circulation.models import Checkout, CheckoutItem, OverdueInvoice
from patronage.core import audit, clock
from patronage.core.models import AuditEvent
from patronage.credentials.models import PasswordLink, PatronCredential
from patronage.feeds.models import CalendarFeed
from patronage.fines.models import Fee, Payment, PaymentAllocation, Waiver
from patronage.groups.models import GroupMember, PatronGroup
from patronage.outbox.models import OutboxMessage
from patronage.patrons.models import Address, Barcode, Patron, Phone
from patronage.reservations.models import Occupancy, Reservation, ReservationEvent, ReservationLine, ReservationSeries
from patronage.resources.models import Authorization
from patronage.resourcesharing.models import IllItem
from patronage.tickets.models import Ticket, TicketComment
from patronage.updates.models import UpdateRequest

FORMAT = "patronage.patron-export"
VERSION = 1


@dataclass(frozen=True)
class Section:
    name: str
    model: type[models.Model]
    rows: Callable[[Patron], Iterable[models.Model]]
    title: str
    skip: frozenset[str] = frozenset()  # this model's fields left out, besides ``_SKIP``


SECTIONS: tuple[Section, ...] = (
    Section("barcodes", Barcode, lambda p: Barcode.objects.filter(patron=p), "Barcodes"),
    Section("addresses", Address, lambda p: Address.objects.filter(patron=p), "Addresses"),
    Section("phones", Phone, lambda p: Phone.objects.filter(patron=p), "Phones"),
    Section("fees", Fee, lambda p: Fee.objects.filter(patron=p), "Fees"),
    Section("payments", Payment, lambda p: Payment.objects.filter(patron=p), "Payments"),
    Section(
        "payment_allocations",
        PaymentAllocation,
        lambda p: PaymentAllocation.objects.filter(payment__patron=p),
        "How payments were applied",
    ),
    Section("waivers", Waiver, lambda p: Waiver.objects.filter(patron=p), "Waivers"),
    Section("blocks", Block, lambda p: Block.objects.filter(patron=p), "Blocks"),
    Section(
        "authorizations", Authorization, lambda p: Authorization.objects.filter(patron=p), "Resource authorizations"
    ),
    Section(
        "reservation_series",
        ReservationSeries,
        lambda p: ReservationSeries.objects.filter(patron=p),
        "Repeating reservations",
    ),
    Section("reservations", Reservation, lambda p: Reservation.objects.filter(patron=p), "Reservations"),
    Section(
        "reservation_lines",
        ReservationLine,
        lambda p: ReservationLine.objects.filter(reservation__patron=p),
        "What each reservation asked for",
    ),
    Section(
        "reservation_events",
        ReservationEvent,
        lambda p: ReservationEvent.objects.filter(reservation__patron=p),
        "Reservation history",
    ),
    Section(
        "reservation_occupancies",
        Occupancy,
        lambda p: Occupancy.objects.filter(reservation__patron=p),
        "Times each reservation held resources",
    ),
    Section("checkouts", Checkout, lambda p: Checkout.objects.filter(patron=p), "Checkouts"),
    Section(
        "checkout_items",
        CheckoutItem,
        lambda p: CheckoutItem.objects.filter(checkout__patron=p),
        "Resources in each checkout and their return",
    ),
    Section(
        "overdue_invoices",
        OverdueInvoice,
        lambda p: OverdueInvoice.objects.filter(checkout__patron=p),
        "Invoices for late returns",
    ),
    Section(
        "portal_credential",
        PatronCredential,
        lambda p: PatronCredential.objects.filter(patron=p),
        "Portal password (whether one is set and when; never the password itself)",
    ),
    Section("password_links", PasswordLink, lambda p: PasswordLink.objects.filter(patron=p), "Set-password links sent"),
    Section("group_membership", GroupMember, lambda p: GroupMember.objects.filter(patron=p), "Group membership"),
    Section(
        "groups", PatronGroup, lambda p: PatronGroup.objects.filter(members__patron=p), "Groups (not the other members)"
    ),
    Section("tickets", Ticket, lambda p: Ticket.objects.filter(reporter=p), "Problems reported (tickets)"),
    Section(
        "ticket_comments", TicketComment, lambda p: TicketComment.objects.filter(patron_author=p), "Comments on tickets"
    ),
    Section(
        "calendar_feeds",
        CalendarFeed,
        lambda p: CalendarFeed.objects.filter(patron=p),
        "Calendar feed addresses (when made and stopped; never the address itself)",
    ),
    Section(
        "interlibrary_loans",
        IllItem,
        lambda p: IllItem.objects.filter(reservation__patron=p),
        "Interlibrary-loan items received for the patron",
    ),
    Section(
        "emails",
        OutboxMessage,
        lambda p: OutboxMessage.objects.filter(patron_id=p.pk),
        "E-mails sent or waiting (to whom, what about, when; not their text, which may hold a live link)",
        skip=frozenset({"text", "html", "headers", "dedupe_key"}),
    ),
    Section(
        "update_requests",
        UpdateRequest,
        lambda p: UpdateRequest.objects.filter(patron=p),
        "Changes of contact details asked for online (old and new values, and what the library decided)",
        skip=frozenset({"resolved_by"}),
    ),
    Section("access_log", AuditEvent, lambda p: AuditEvent.objects.filter(patron_id=p.pk), "Access and change log"),
)

# Fields that are bookkeeping of the staff side, not data about the patron, and secrets: the password
# hash and a link's salt and digest would help whoever holds the file to guess the password or the link.
_SKIP = {"patron", "library", "password", "salt", "digest"}


def _value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _row(obj: models.Model, skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in _SKIP or field.name in skip:
            continue
        value = getattr(obj, field.attname)
        if field.choices and value is not None:
            data[field.name] = _value(value)
            display = getattr(obj, f"get_{field.name}_display", None)
            if display is not None:
                data[f"{field.name}_label"] = display()
            continue
        data[field.name] = _value(value)
    return data


def patron_data(patron: Patron) -> dict[str, Any]:
    patron_row = _row(patron)
    patron_row["library"] = patron.library.name
    patron_row["patron_type_name"] = patron.patron_type.name
    patron_row["registered_branch_name"] = patron.registered_branch.name
    data: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": clock.now().isoformat(),
        "library": {"code": patron.library.code, "name": patron.library.name},
        "patron": patron_row,
    }
    for section in SECTIONS:
        data[section.name] = [_row(obj, section.skip) for obj in section.rows(patron)]
    return data


def summary_text(data: dict[str, Any]) -> str:
    p = data["patron"]
    lines = [
        f"Data held about {p['first_name']} {p['last_name']} by {data['library']['name']}",
        f"Generated {data['generated_at']}",
        "",
        "Patron record",
    ]
    for key, value in p.items():
        if not key.endswith("_label"):
            lines.append(f"  {key.replace('_', ' ')}: {value if value not in (None, '') else '-'}")
    for section in SECTIONS:
        rows = data[section.name]
        lines += ["", f"{section.title} ({len(rows)})"]
        for row in rows:
            lines.append("  - " + "; ".join(f"{k}: {v}" for k, v in row.items() if v not in (None, "", {}, [])))
    return "\n".join(lines) + "\n"


def export_archive(*, actor: audit.Actor, patron: Patron) -> tuple[str, bytes]:
    """A ZIP with ``patron.json`` (machine-readable) and ``summary.txt``; the download is audited."""
    data = patron_data(patron)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("patron.json", json.dumps(data, indent=2, ensure_ascii=False))
        archive.writestr("summary.txt", summary_text(data))
    audit.record(
        actor, "patron.exported", library_id=patron.library_id, patron_id=patron.pk, patron_label=patron.display_name
    )
    return f"patron-{patron.library.code}-{patron.pk}.zip", buffer.getvalue()


def export_data(*, actor: audit.Actor, patron: Patron) -> dict[str, Any]:
    """The same data as the archive's ``patron.json``, for the API; the read is audited the same way."""
    data = patron_data(patron)
    audit.record(
        actor, "patron.exported", library_id=patron.library_id, patron_id=patron.pk, patron_label=patron.display_name
    )
    return data
