"""The reminder job: which notices it queues, whom it skips, and that each goes once however often it runs."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from patronage.circulation import services as desk
from patronage.core import clock
from patronage.core.errors import ValidationFailed
from patronage.core.models import AuditEvent
from patronage.libraries.models import Library
from patronage.notices import services
from patronage.outbox import services as outbox
from patronage.outbox.models import OutboxMessage
from patronage.outbox.tests.smtp import Server
from patronage.patrons import services as patron_services
from patronage.patrons.models import Patron
from patronage.reservations import services as reservations
from patronage.resources.tests.builders import NOW, at, make_center, make_resource, make_type
from tests.concurrency import at_once, split
from tests.factories import SYSTEM, make_library, make_patron


def checked_out(library: Library, patron: Patron, n: int, *, due_hour: int) -> None:
    """A checkout of one laptop on 3 May from 10:00, due back on 3 May at ``due_hour``."""
    center = make_center(library)
    laptops = make_type(library, f"Laptops {n}", centers=[center])
    make_resource(library, laptops, center, identifier=f"LAP-{n}")
    with clock.frozen(at(3, 9)):
        made = reservations.create_reservation(
            actor=SYSTEM, patron=patron, center=center, starts_at=at(3, 10), ends_at=at(3, due_hour),
            lines=[{"resource_type": laptops.pk}],
        )  # fmt: skip
    with clock.frozen(at(3, 10, 1)):
        desk.check_out(actor=SYSTEM, reservation=made, scanned=[f"LAP-{n}"])


def kinds_for(patron: Patron) -> list[str]:
    return sorted(OutboxMessage.objects.filter(patron_id=patron.pk).values_list("kind", flat=True))


@pytest.fixture
def library() -> Library:
    return make_library()


@pytest.mark.django_db
def test_almost_overdue_reminders_honour_opt_outs_only_where_the_library_allows_them(library: Library) -> None:
    keen = make_patron(library, first_name="Keen")
    quiet = make_patron(library, first_name="Quiet", opt_out_almost_overdue=True)
    checked_out(library, keen, 1, due_hour=18)
    checked_out(library, quiet, 2, due_hour=18)
    with clock.frozen(at(3, 12)):  # due in 6 hours, inside the default 24-hour window
        services.run_job()
    assert kinds_for(keen) == ["almost_overdue"]
    assert kinds_for(quiet) == []
    message = OutboxMessage.objects.get(patron_id=keen.pk)
    assert message.to == [keen.primary_email]
    assert "2027-05-03 at 18:00" in message.text
    assert "America/New_York" in message.text
    # The library stops offering this opt-out: the patron's stored choice no longer keeps it away.
    services.save_settings(actor=SYSTEM, library=library, data={"may_opt_out_almost_overdue": ""})
    with clock.frozen(at(3, 12, 5)):
        services.run_job()
    assert kinds_for(quiet) == ["almost_overdue"]


@pytest.mark.django_db
def test_overdue_notices_cannot_be_opted_out_of(library: Library) -> None:
    patron = make_patron(library, opt_out_almost_overdue=True, opt_out_record_expiration=True, opt_out_inactive=True)
    checked_out(library, patron, 1, due_hour=11)
    with clock.frozen(at(3, 12)):
        services.run_job()
    assert kinds_for(patron) == ["overdue"]


@pytest.mark.django_db
def test_expiry_and_inactive_notices_and_their_opt_outs(library: Library) -> None:
    with clock.frozen(NOW - dt.timedelta(days=400)):
        dormant = make_patron(library, first_name="Dormant")
        dormant_out = make_patron(library, opt_out_inactive=True)
    expiring = make_patron(library, expires_on=(NOW + dt.timedelta(days=10)).date().isoformat())
    expiring_out = make_patron(
        library, expires_on=(NOW + dt.timedelta(days=10)).date().isoformat(), opt_out_record_expiration=True
    )
    by_post = make_patron(
        library, expires_on=(NOW + dt.timedelta(days=10)).date().isoformat(), notification_method="mail"
    )
    far = make_patron(library, expires_on=(NOW + dt.timedelta(days=60)).date().isoformat())
    with clock.frozen(NOW):
        services.run_job()
    assert kinds_for(dormant) == ["inactive"]
    assert kinds_for(dormant_out) == []
    assert kinds_for(expiring) == ["record_expiration"]
    assert kinds_for(expiring_out) == []
    assert kinds_for(by_post) == []  # notices by post are not e-mailed
    assert kinds_for(far) == []
    # A renewed record expiring again later is a new notice; the old one is not repeated.
    patron_services.update_patron(
        actor=SYSTEM, patron=expiring, data={"expires_on": (NOW + dt.timedelta(days=12)).date().isoformat()}
    )
    with clock.frozen(NOW):
        services.run_job()
    assert kinds_for(expiring) == ["record_expiration", "record_expiration"]


@pytest.mark.django_db
def test_the_job_run_twice_sends_each_notice_once(library: Library, smtp: Server) -> None:
    patron = make_patron(library, alternate_email="second@example.org")
    checked_out(library, patron, 1, due_hour=18)
    smtp.start()
    with clock.frozen(at(3, 12)):
        first = services.run_job()
        second = services.run_job()
        outbox.send_due()
        services.run_job()
        outbox.send_due()
    assert len(first) == 1
    assert second == []
    assert len(smtp.inbox.messages) == 1
    assert smtp.inbox.recipients == [[patron.primary_email, "second@example.org"]]
    assert "Due soon" in str(smtp.inbox.messages[0]["Subject"])


@pytest.mark.concurrency
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_job_at_once_queue_each_notice_once() -> None:
    library = make_library()
    patrons = [make_patron(library) for _ in range(3)]
    for n, patron in enumerate(patrons):
        checked_out(library, patron, n, due_hour=18)

    def worker(_index: int) -> list[int]:
        return services.run_job(now=at(3, 12))

    _runs, errors = split(at_once(worker, 2))
    assert errors == [], errors
    queued = [pk for pk in OutboxMessage.objects.values_list("patron_id", flat=True) if pk is not None]
    assert sorted(queued) == sorted(p.pk for p in patrons)


@pytest.mark.django_db
def test_notice_settings_are_checked_and_audited(library: Library) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.save_settings(actor=SYSTEM, library=library, data={"expiration_days": "soon", "colour": "red"})
    assert set(caught.value.errors) == {"colour"}
    with pytest.raises(ValidationFailed) as caught:
        services.save_settings(actor=SYSTEM, library=library, data={"expiration_days": "soon"})
    assert "whole number" in caught.value.errors["expiration_days"][0]
    saved = services.save_settings(actor=SYSTEM, library=library, data={"expiration_days": "30"})
    assert saved.expiration_days == 30
    assert AuditEvent.objects.get(action="notices.settings_changed").detail["fields"] == ["expiration_days"]


@pytest.fixture
def smtp(settings: Any) -> Iterator[Server]:
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    server = Server()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.stop()
