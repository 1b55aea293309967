"""The outbox against a real SMTP server on loopback: nothing lost, nothing doubled, nothing sent early."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import transaction

from patronage.core import clock
from patronage.core.errors import FieldError
from patronage.core.models import AuditEvent
from patronage.outbox import services
from patronage.outbox.models import OutboxMessage
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library

from .smtp import Server

NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def later(seconds: int) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def queue(n: int = 0, **extra: Any) -> OutboxMessage:
    message = services.enqueue(
        kind="test", to=[f"patron{n}@example.org"], subject=f"Notice {n}", text=f"Body {n}", wake=False, **extra
    )
    assert message is not None
    return message


@pytest.mark.django_db
def test_a_rolled_back_change_sends_nothing(smtp: Server) -> None:
    smtp.start()

    def change_that_fails() -> None:
        with transaction.atomic():
            queue()
            raise RuntimeError("the change failed after queuing its message")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert OutboxMessage.objects.count() == 0
    assert services.send_due().sent == []
    assert smtp.inbox.messages == []


@pytest.mark.django_db
def test_server_down_then_up_loses_nothing_and_doubles_nothing(smtp: Server) -> None:
    with clock.frozen(NOW):
        queued = [queue(n, cc=["alt@example.org"]) for n in range(3)]
        ids = {m.pk: m.message_id for m in queued}
        down = services.send_due()
    # The server is down: the first message records the failed try, the rest wait untouched.
    assert down.stopped
    assert down.sent == []
    assert down.retrying == [queued[0].pk]
    first = OutboxMessage.objects.get(pk=queued[0].pk)
    assert first.state == "pending"
    assert first.attempts == 1
    assert first.next_attempt_at == later(60)
    assert "Connection refused" in first.last_error or "Errno" in first.last_error
    assert set(OutboxMessage.objects.exclude(pk=first.pk).values_list("attempts", flat=True)) == {0}
    smtp.start()
    with clock.frozen(later(30)):  # not yet due again: only the two untried ones go
        assert sorted(services.send_due().sent) == sorted(m.pk for m in queued[1:])
    with clock.frozen(later(61)):
        assert services.send_due().sent == [first.pk]
        assert services.send_due().sent == []  # a second run finds nothing
    assert sorted(smtp.inbox.message_ids()) == sorted(ids.values())  # each once, with its queued Message-ID
    assert all(m.state == "sent" and m.sent_at for m in OutboxMessage.objects.all())
    assert [OutboxMessage.objects.get(pk=pk).message_id for pk in ids] == list(ids.values())
    assert ["patron0@example.org", "alt@example.org"] in smtp.inbox.recipients  # the copy went too


@pytest.mark.django_db
def test_message_id_is_made_at_enqueue_with_the_mail_domain_and_kept_across_retries(
    smtp: Server, settings: object
) -> None:
    smtp.start()
    smtp.inbox.refuse_with = "451 4.3.0 Try again later"
    with clock.frozen(NOW):
        message = queue()
        assert message.message_id.startswith("<")
        assert message.message_id.endswith("@patronage.example>")
        assert services.send_due().retrying == [message.pk]
    smtp.inbox.refuse_with = ""
    with clock.frozen(later(60)):
        assert services.send_due().sent == [message.pk]
    assert smtp.inbox.message_ids() == [message.message_id]
    assert str(smtp.inbox.messages[0]["Subject"]) == "Notice 0"


@pytest.mark.django_db
def test_retries_back_off_doubling_to_the_cap_then_fail_with_the_error(smtp: Server) -> None:
    smtp.start()
    smtp.inbox.refuse_with = "451 4.3.0 Mailbox busy"
    moment = NOW
    with clock.frozen(moment):
        message = queue()
    waits = []
    for _ in range(5):
        with clock.frozen(moment):
            services.send_due()
        message.refresh_from_db()
        if message.state == "pending":
            waits.append(int((message.next_attempt_at - moment).total_seconds()))
            moment = message.next_attempt_at
    assert waits == [60, 120, 240, 480]  # doubling from 60 s; the next would pass the 600 s cap
    assert message.state == "failed"
    assert message.attempts == 5
    assert "451" in message.last_error
    assert "Mailbox busy" in message.last_error
    assert smtp.inbox.messages == []
    with clock.frozen(moment + dt.timedelta(days=1)):
        assert services.send_due().sent == []  # failed messages are not tried again by themselves
    assert services.retry_delay(9) == dt.timedelta(seconds=600)


@pytest.mark.django_db
def test_a_permanent_refusal_fails_at_once_and_staff_can_retry_it(smtp: Server) -> None:
    library = make_library()
    smtp.start()
    smtp.inbox.refuse_with = "550 5.1.1 No such mailbox"
    with clock.frozen(NOW):
        message = queue(library=library)
        assert services.send_due().failed == [message.pk]
    message.refresh_from_db()
    assert message.state == "failed"
    assert message.attempts == 1
    assert "550" in message.last_error
    smtp.inbox.refuse_with = ""
    with clock.frozen(later(5)):
        services.retry(actor=SYSTEM, message=message)
        with pytest.raises(FieldError):
            services.retry(actor=SYSTEM, message=message)  # only failed messages
        assert services.send_due().sent == [message.pk]
    assert smtp.inbox.message_ids() == [message.message_id]
    event = AuditEvent.objects.get(action="outbox.retried")
    assert event.library_id == library.pk
    assert "550" in event.detail["last_error"]


@pytest.mark.django_db
def test_the_same_dedupe_key_queues_one_message() -> None:
    first = queue(dedupe_key="reminder:1:checkout-5")
    assert (
        services.enqueue(kind="test", to=["x@example.org"], subject="s", text="t", dedupe_key="reminder:1:checkout-5")
        is None
    )
    assert OutboxMessage.objects.count() == 1
    assert first.pk
    with pytest.raises(FieldError):
        services.enqueue(kind="test", to=["", " "], subject="s", text="t")


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_message_once(smtp: Server) -> None:
    smtp.start()
    queued = [queue(n) for n in range(24)]

    def worker(_index: int) -> list[int]:
        return services.send_due().sent

    sent, errors = split(at_once(worker, 2))
    assert errors == [], errors
    assert sorted(sent[0] + sent[1]) == sorted(m.pk for m in queued)  # every row by exactly one worker
    received = smtp.inbox.message_ids()
    assert len(received) == 24
    assert sorted(received) == sorted(m.message_id for m in queued)
    assert OutboxMessage.objects.filter(state="sent").count() == 24


@pytest.mark.django_db
def test_the_set_password_e_mail_goes_through_the_outbox_once(smtp: Server) -> None:
    from patronage.credentials import mail as credential_mail
    from patronage.credentials import services as credentials
    from tests.factories import make_patron

    smtp.start()
    patron = make_patron(make_library("north", name="North Library"))
    link, _ = credentials.issue_link(patron)
    assert credential_mail.deliver_password_link(link.pk, "https://portal.example.org/")
    assert credential_mail.deliver_password_link(link.pk, "https://portal.example.org/")  # e.g. a task run twice
    [message] = OutboxMessage.objects.all()
    assert message.kind == "password_link_set"
    assert message.patron_id == patron.pk
    assert message.to == [patron.primary_email]
    services.send_due()
    assert smtp.inbox.message_ids() == [message.message_id]
    assert "North Library" in str(smtp.inbox.messages[0]["Subject"])
