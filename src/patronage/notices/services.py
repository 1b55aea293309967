"""Reminder notices: the scheduled job that queues them on the outbox, and the library's notice settings.

Each notice has a dedupe key naming the patron, the kind and the thing it is about (the checkout and its
due time, the expiry date, the last activity, the invoice), so a second run of the job, or the same
run in two workers at once, queues nothing new. A changed due date or a renewed record makes a new
key, so the patron is reminded again about the new date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Max, Q

from patronage.circulation import services as circulation
from patronage.circulation.models import Checkout, OverdueInvoice
from patronage.core import audit, clock
from patronage.core.errors import ValidationFailed
from patronage.core.values import flag
from patronage.libraries.models import Library
from patronage.outbox import services as outbox
from patronage.patrons.models import Patron

from . import kinds
from .models import NoticeSettings

log = logging.getLogger(__name__)
JOB_NAME = "reminder_notices"
WINDOW_FIELDS = {"almost_overdue_hours": 24 * 60, "expiration_days": 3650, "inactive_days": 3650}
FLAG_FIELDS = ("send_overdue", "may_opt_out_almost_overdue", "may_opt_out_record_expiration", "may_opt_out_inactive")
SETTING_FIELDS = (*WINDOW_FIELDS, *FLAG_FIELDS)


def settings_for(library: Library) -> NoticeSettings:
    """The library's notice settings (the defaults, unsaved, when it has none yet)."""
    found = NoticeSettings.objects.filter(library=library).first()
    return found if found is not None else NoticeSettings(library=library)


def clean_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    cleaned: dict[str, Any] = {}
    for name, high in WINDOW_FIELDS.items():
        if name not in data:
            continue
        text = str(data[name] if data[name] is not None else "").strip()
        if not text.isdigit() or int(text) > high:
            errors[name] = [f"Enter a whole number from 0 (off) to {high:,}, e.g. 14."]
        else:
            cleaned[name] = int(text)
    for name in FLAG_FIELDS:
        if name in data:
            cleaned[name] = flag(data[name])
    if errors:
        raise ValidationFailed(errors)
    return cleaned


@transaction.atomic
def save_settings(*, actor: audit.Actor, library: Library, data: Mapping[str, Any]) -> NoticeSettings:
    """Change the library's notice settings; only the fields given change. Audited."""
    unknown = sorted(set(data) - set(SETTING_FIELDS))
    if unknown:
        raise ValidationFailed({k: [f"Unknown setting; use {', '.join(SETTING_FIELDS)}."] for k in unknown})
    cleaned = clean_settings(data)
    current, _ = NoticeSettings.objects.select_for_update().get_or_create(library=library)
    changed = sorted(k for k, v in cleaned.items() if getattr(current, k) != v)
    for key, value in cleaned.items():
        setattr(current, key, value)
    current.updated_at = clock.now()
    current.save()
    audit.record(actor, "notices.settings_changed", library_id=library.pk, fields=changed)
    return current


# --- the reminder job ---------------------------------------------------------------------------------


def _recipients(patron: Patron) -> tuple[list[str], list[str]] | None:
    """Primary address, alternate as a copy; None when the patron gets no e-mail notices."""
    if patron.notification_method != Patron.NotificationMethod.EMAIL:
        return None
    addresses = [a for a in (patron.primary_email, patron.alternate_email) if a]
    if not addresses:
        return None
    return addresses[:1], addresses[1:]


def _local(moment: dt.datetime, library: Library) -> str:
    return moment.astimezone(ZoneInfo(library.time_zone)).strftime("%Y-%m-%d at %H:%M")


def _notice(
    kind: kinds.Kind, patron: Patron, key: str, subject: str, body: str, *, allowed: frozenset[str]
) -> int | None:
    """Queue one notice unless the patron opted out of it or it was queued before; the message id or None."""
    library = patron.library
    opted_out = bool(kind.opt_out_field and getattr(patron, kind.opt_out_field))
    if kinds.skipped(kind, library_allows=allowed, patron_opted_out=opted_out):
        return None
    recipients = _recipients(patron)
    if recipients is None:
        return None
    to, cc = recipients
    text = f"Hello {patron.first_name},\n\n{body}\n\n{library.name}\n"
    if kind.optional and kind.code in allowed:
        text += "\nYou can ask the library to stop sending you this kind of reminder.\n"
    try:
        message = outbox.enqueue(
            kind=kind.code, to=to, cc=cc, subject=subject, text=text, library=library, patron_id=patron.pk,
            dedupe_key=f"{kind.code}:{patron.pk}:{key}", wake=False,
        )  # fmt: skip
    except IntegrityError:  # the same notice queued by another worker at this very moment
        return None
    return message.pk if message is not None else None


def _almost_overdue(library: Library, options: NoticeSettings, now: dt.datetime) -> Iterator[int | None]:
    if not options.almost_overdue_hours:
        return
    due = Checkout.objects.filter(
        library=library,
        state=Checkout.State.OPEN,
        completed_at__isnull=True,
        patron__isnull=False,
        due_at__gt=now,
        due_at__lte=now + dt.timedelta(hours=options.almost_overdue_hours),
    ).select_related("patron", "patron__library")
    for checkout in due.iterator(chunk_size=500):
        patron = checkout.patron
        if patron is None:  # anonymised since the query ran
            continue
        when = _local(checkout.due_at, library)
        yield _notice(
            kinds.ALMOST_OVERDUE, patron, f"checkout-{checkout.pk}:{checkout.due_at.isoformat()}",
            f"Due soon: your checkout from {library.name}",
            f"What you checked out on {_local(checkout.checked_out_at, library)} is due back on {when} "
            f"({library.time_zone} time). Please return it by then.",
            allowed=options.optional_kinds,
        )  # fmt: skip


def _overdue(library: Library, options: NoticeSettings, now: dt.datetime) -> Iterator[int | None]:
    if not options.send_overdue:
        return
    late = Checkout.objects.filter(
        library=library, completed_at__isnull=True, patron__isnull=False, due_at__lte=now
    ).select_related("patron", "patron__library")
    for checkout in late.iterator(chunk_size=500):
        patron = checkout.patron
        if patron is None:  # anonymised since the query ran
            continue
        yield _notice(
            kinds.OVERDUE, patron, f"checkout-{checkout.pk}:{checkout.due_at.isoformat()}",
            f"Overdue: please return your checkout to {library.name}",
            f"What you checked out was due back on {_local(checkout.due_at, library)} ({library.time_zone} "
            "time) and has not been returned yet. Please return it as soon as you can.",
            allowed=options.optional_kinds,
        )  # fmt: skip
    invoices = OverdueInvoice.objects.filter(checkout__library=library, checkout__patron__isnull=False).select_related(
        "checkout__patron", "checkout__patron__library", "fee"
    )
    for invoice in invoices.iterator(chunk_size=500):
        patron = invoice.checkout.patron
        if patron is None:
            continue
        amount = f"{invoice.fee.amount} {library.currency}" if invoice.fee is not None else "a fee"
        yield _notice(
            kinds.INVOICE, patron, f"invoice-{invoice.pk}",
            f"Invoice from {library.name} for a late return",
            f"We charged {amount} because a checkout due on {_local(invoice.checkout.due_at, library)} "
            "was not returned in time. You can see and pay it at the library or in the portal.",
            allowed=options.optional_kinds,
        )  # fmt: skip


def _record_expiration(library: Library, options: NoticeSettings, now: dt.datetime) -> Iterator[int | None]:
    if not options.expiration_days:
        return
    today = now.astimezone(ZoneInfo(library.time_zone)).date()
    expiring = Patron.objects.filter(
        library=library,
        status=Patron.Status.ACTIVE,
        expires_on__gte=today,
        expires_on__lte=today + dt.timedelta(days=options.expiration_days),
    ).select_related("library")
    for patron in expiring.iterator(chunk_size=500):
        yield _notice(
            kinds.RECORD_EXPIRATION, patron, f"expires-{patron.expires_on.isoformat()}",
            f"Your {library.name} account expires on {patron.expires_on:%Y-%m-%d}",
            f"Your library account expires on {patron.expires_on:%Y-%m-%d}. Ask the library to renew it "
            "if you want to keep borrowing.",
            allowed=options.optional_kinds,
        )  # fmt: skip


def _inactive(library: Library, options: NoticeSettings, now: dt.datetime) -> Iterator[int | None]:
    if not options.inactive_days:
        return
    cutoff = now - dt.timedelta(days=options.inactive_days)
    quiet = (
        Patron.objects.filter(library=library, status=Patron.Status.ACTIVE, created_at__lt=cutoff)
        .annotate(last_checkout=Max("checkouts__checked_out_at"))
        .filter(Q(last_checkout__lt=cutoff) | Q(last_checkout__isnull=True))
        .select_related("library")
    )
    for patron in quiet.iterator(chunk_size=500):
        since: dt.datetime = getattr(patron, "last_checkout", None) or patron.created_at
        yield _notice(
            kinds.INACTIVE, patron, f"since-{since.date().isoformat()}",
            f"We miss you at {library.name}",
            f"You have not borrowed anything from {library.name} since {since.astimezone(ZoneInfo(library.time_zone)):%Y-%m-%d}. "
            "Your account is still open; come and see what is new.",
            allowed=options.optional_kinds,
        )  # fmt: skip


PRODUCERS = (_almost_overdue, _overdue, _record_expiration, _inactive)


def queue_reminders(*, now: dt.datetime | None = None) -> list[int]:
    """Queue every due notice of every library once; returns the ids of the messages queued now."""
    moment = now or clock.now()
    queued: list[int] = []
    for library in Library.objects.order_by("id"):
        options = settings_for(library)
        for produce in PRODUCERS:
            queued.extend(pk for pk in produce(library, options, moment) if pk is not None)
    if queued:
        outbox.wake_sender()
    return queued


def run_job(*, now: dt.datetime | None = None) -> list[int]:
    """The scheduled job: queue the reminders and record the run (visible beside the lending jobs)."""
    started = clock.now()
    result = queue_reminders(now=now)
    circulation.record_job_run(JOB_NAME, started, result)
    log.info("reminder notices queued: %s", len(result))
    return result
