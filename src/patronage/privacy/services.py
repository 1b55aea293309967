"""Deleting a patron from one library, when nothing is outstanding."""

from __future__ import annotations

from django.db import transaction

from patronage.circulation import retention
from patronage.core import audit
from patronage.core.errors import Refused
from patronage.groups import services as group_services
from patronage.outbox import services as outbox
from patronage.patrons.deletion import DeletionObstacle, obstacles
from patronage.patrons.models import Patron
from patronage.tickets import services as ticket_services


class DeletionRefused(Refused):
    code = "deletion_refused"

    def __init__(self, found: list[DeletionObstacle]) -> None:
        super().__init__(
            "The patron cannot be deleted while something is outstanding.",
            [{"code": o.code, "message": o.message} for o in found],
        )


def deletion_obstacles(patron: Patron) -> list[DeletionObstacle]:
    return obstacles(patron)


@transaction.atomic
def delete_patron(*, actor: audit.Actor, patron: Patron) -> None:
    """Remove the patron's account at its library. Accounts at other libraries are untouched.

    The patron's finished reservations and checkouts stay for statistics, anonymised as the retention job
    does (``circulation.retention``); the audit log keeps its events for this patron but drops the name
    they showed.
    """
    patron = Patron.objects.select_for_update().get(pk=patron.pk)
    found = obstacles(patron)
    if found:
        raise DeletionRefused(found)
    patron_id, library_id = patron.pk, patron.library_id
    retention.anonymise_patron_history(patron_id)
    group_services.leave_on_deletion(actor=actor, patron=patron)  # audited; an emptied group goes too
    ticket_services.forget_reporter(actor=actor, patron=patron)  # tickets stay, without the patron's words
    patron.delete()
    outbox.forget_patron(patron_id)  # queued and sent e-mails lose the addresses and text
    audit.forget_patron(patron_id)
    audit.record(actor, "patron.deleted", library_id=library_id, patron_id=patron_id)
