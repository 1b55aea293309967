"""Queue e-mail in the caller's transaction; send it later from the worker, once, with retries.

``enqueue`` writes one row inside whatever transaction is open, so a change that rolls back sends
nothing, and a message whose change committed cannot be lost: it waits in the table until sent.
``send_due`` (run by the worker, see ``tasks``) takes one due row at a time, locked (``SELECT … FOR
UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite every transaction takes the write lock at BEGIN), sends
it and records the outcome in that same transaction. Two workers never hold the same row, so never
send it twice. If the SMTP server accepted a message but the outcome could not be recorded (the worker
died in between), the message is sent again later with the same Message-ID, which mail programs use
to recognise the copy.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.utils import make_msgid
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, connection, transaction
from django.db.models import Count

from patronage.core import audit, clock
from patronage.core.errors import FieldError
from patronage.libraries.models import Library

from .models import OutboxMessage

log = logging.getLogger(__name__)
MAX_ERROR_CHARS = 2000


def _setting(name: str, default: int) -> int:
    return int(getattr(settings, name, default))


def max_attempts() -> int:
    return _setting("PATRONAGE_OUTBOX_MAX_ATTEMPTS", 8)


def retry_delay(attempts: int) -> dt.timedelta:
    """How long to wait after the ``attempts``-th failed try: doubling from the first delay, up to the cap."""
    first = _setting("PATRONAGE_OUTBOX_RETRY_SECONDS", 60)
    cap = _setting("PATRONAGE_OUTBOX_RETRY_CAP_SECONDS", 6 * 3600)
    return dt.timedelta(seconds=min(first * 2 ** max(attempts - 1, 0), cap))


def mail_domain() -> str:
    """The domain of Message-IDs: PATRONAGE_MAIL_DOMAIN, else that of DEFAULT_FROM_EMAIL."""
    configured = str(getattr(settings, "PATRONAGE_MAIL_DOMAIN", "") or "")
    if configured:
        return configured
    sender = str(settings.DEFAULT_FROM_EMAIL)
    return sender.rpartition("@")[2].strip(" >") or "localhost"


def _addresses(values: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for value in values:
        text = (value or "").strip()
        if text and text.lower() not in (s.lower() for s in seen):
            seen.append(text)
    return seen


def enqueue(
    *,
    kind: str,
    to: Sequence[str],
    subject: str,
    text: str,
    html: str = "",
    cc: Sequence[str] = (),
    headers: dict[str, str] | None = None,
    library: Library | int | None = None,
    patron_id: int | None = None,
    dedupe_key: str | None = None,
    from_email: str | None = None,
    wake: bool = True,
) -> OutboxMessage | None:
    """Queue one message in the current transaction; ``None`` when ``dedupe_key`` was queued before.

    ``wake`` asks the worker to run the sender as soon as the transaction commits, instead of at its
    next tick (a job queuing many messages wakes it once itself, see ``wake_sender``).
    """
    recipients = _addresses(to)
    if not recipients:
        raise FieldError("to", "A message needs at least one recipient address.")
    copies = [a for a in _addresses(cc) if a.lower() not in {r.lower() for r in recipients}]
    if dedupe_key is not None and OutboxMessage.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    now = clock.now()
    library_id = library.pk if isinstance(library, Library) else library
    message = OutboxMessage(
        library_id=library_id,
        patron_id=patron_id,
        kind=kind,
        dedupe_key=dedupe_key,
        message_id=make_msgid(domain=mail_domain()),
        from_email=from_email or str(settings.DEFAULT_FROM_EMAIL),
        to=recipients,
        cc=copies,
        subject=" ".join(subject.split())[:255],
        text=text,
        html=html,
        headers=dict(headers or {}),
        next_attempt_at=now,
        created_at=now,
    )
    try:
        with transaction.atomic():  # a savepoint: a duplicate key leaves the caller's transaction usable
            message.save()
    except IntegrityError:
        if dedupe_key is not None and OutboxMessage.objects.filter(dedupe_key=dedupe_key).exists():
            return None  # another transaction queued the same message a moment ago
        raise
    if wake:
        wake_sender()
    return message


def wake_sender() -> None:
    """Queue the sender task once the current transaction commits (nothing if it rolls back)."""
    from . import tasks  # the task module imports this one

    transaction.on_commit(lambda: tasks.send_outbox.enqueue())


def build(message: OutboxMessage, backend: BaseEmailBackend | None = None) -> EmailMultiAlternatives:
    """The e-mail of a row, always with the row's Message-ID."""
    email = EmailMultiAlternatives(
        subject=message.subject,
        body=message.text,
        from_email=message.from_email,
        to=list(message.to),
        cc=list(message.cc),
        headers={**message.headers, "Message-ID": message.message_id},
        connection=backend,
    )
    if message.html:
        email.attach_alternative(message.html, "text/html")
    return email


def _permanent(exc: BaseException) -> bool:
    """Will trying again not help? (The server refused the message or every recipient for good.)"""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(code >= 500 for code in codes)
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return False
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return isinstance(exc, ValueError | UnicodeError)  # a malformed message never gets better


def _unreachable(exc: BaseException) -> bool:
    """Is the server itself unreachable (so the rest of the batch should wait for the next run)?"""
    if isinstance(exc, smtplib.SMTPConnectError | smtplib.SMTPServerDisconnected):
        return True
    return isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)


@dataclass
class SendReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    stopped: str = ""


def _next_due() -> OutboxMessage | None:
    due = OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING, next_attempt_at__lte=clock.now())
    if connection.features.has_select_for_update_skip_locked:
        due = due.select_for_update(skip_locked=True)
    return due.order_by("next_attempt_at", "id").first()


def send_due(*, limit: int | None = None) -> SendReport:
    """Send the due messages, one row and one transaction at a time; the outcome is saved with the attempt.

    Stops early when the SMTP server cannot be reached: that row records the failed attempt and the
    others wait for the next run instead of each waiting for the same time-out.
    """
    report = SendReport()
    budget = _setting("PATRONAGE_OUTBOX_BATCH", 200) if limit is None else limit
    backend = get_connection(fail_silently=False)
    try:
        for _ in range(budget):
            with transaction.atomic():
                message = _next_due()
                if message is None:
                    break
                now = clock.now()
                message.attempts += 1
                message.last_attempt_at = now
                try:
                    backend.open()  # once per run: later rows reuse the connection (no-op when open)
                    build(message, backend).send()
                except Exception as exc:  # noqa: BLE001 - every failure is recorded on the row
                    message.last_error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
                    if _permanent(exc) or message.attempts >= max_attempts():
                        message.state = OutboxMessage.State.FAILED
                        report.failed.append(message.pk)
                        log.warning("outbox message %s failed for good: %s", message.pk, message.last_error)
                    else:
                        message.next_attempt_at = now + retry_delay(message.attempts)
                        report.retrying.append(message.pk)
                    if _unreachable(exc):
                        report.stopped = message.last_error
                        _close(backend)
                else:
                    message.state = OutboxMessage.State.SENT
                    message.sent_at = now
                    message.last_error = ""
                    report.sent.append(message.pk)
                message.save()
            if report.stopped:
                break
    finally:
        _close(backend)
    return report


def _close(backend: BaseEmailBackend) -> None:
    try:
        backend.close()
    except Exception:
        log.debug("closing the mail connection failed", exc_info=True)


@transaction.atomic
def retry(*, actor: audit.Actor, message: OutboxMessage) -> OutboxMessage:
    """Send a failed message again: it goes back to waiting with a fresh set of attempts."""
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if message.state != OutboxMessage.State.FAILED:
        raise FieldError("state", "Only a failed message can be retried; this one is not failed.")
    message.state = OutboxMessage.State.PENDING
    message.attempts = 0
    message.next_attempt_at = clock.now()
    message.save(update_fields=["state", "attempts", "next_attempt_at"])
    audit.record(
        actor, "outbox.retried", library_id=message.library_id, patron_id=message.patron_id,
        message=message.pk, kind=message.kind, last_error=message.last_error[:200],
    )  # fmt: skip
    wake_sender()
    return message


def forget_patron(patron_id: int) -> int:
    """Blank the addresses and text of a patron's messages (erasure); returns how many rows changed.

    A message still waiting is not sent any more: it becomes ``failed``, saying why.
    """
    rows = OutboxMessage.objects.filter(patron_id=patron_id)
    changed = rows.update(to=[], cc=[], subject="(removed)", text="", html="", headers={}, last_error="")
    rows.filter(state=OutboxMessage.State.PENDING).update(
        state=OutboxMessage.State.FAILED, last_error="Not sent: the patron's data was deleted first."
    )
    return changed


def counts(library: Library) -> dict[str, Any]:
    """How many of the library's messages are in each state (for the staff page)."""
    result: dict[str, Any] = {state: 0 for state in OutboxMessage.State.values}
    rows = OutboxMessage.objects.filter(library=library).values("state").annotate(n=Count("id"))
    for row in rows:
        result[row["state"]] = row["n"]
    return result
