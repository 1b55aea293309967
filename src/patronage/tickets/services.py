"""The only code that changes tickets. Each function is one transaction that records its audit event.

Writes are safe to retry: reporting the same summary and description again while the first ticket is
still open returns that ticket; the same comment twice within a minute is kept once; moving a ticket to
the state it is in, or assigning it to whom it is assigned to, changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from patronage.circulation.models import Checkout
from patronage.core import audit, clock
from patronage.core.errors import Conflict, DomainError, FieldError, NotFound, ValidationFailed
from patronage.libraries.models import Branch
from patronage.patrons.models import Patron
from patronage.reservations.models import Reservation

from . import queries, rules
from .models import Ticket, TicketComment
from .rules import COMMENT_MAX, State

REPEAT_WINDOW = dt.timedelta(minutes=1)
REMOVED = "(removed: the reporter's account was deleted)"


class ReportsOff(DomainError):
    """The center does not take problem reports from the portal."""

    code = "problem_reports_off"
    status = 403


class TransitionRefused(Conflict):
    code = "transition_not_allowed"


def _lock(ticket: Ticket) -> Ticket:
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def _reference(patron: Patron, about: str) -> dict[str, Any]:
    """The reservation, checkout or resource a report is about, checked to be the patron's own."""
    kind, _, raw = (about or "").strip().partition("-")
    if not kind:
        return {}
    wrong = FieldError("about", "Choose one of your own reservations, checkouts or resources, or nothing.")
    if not raw.isdigit():
        raise wrong
    key = int(raw)
    if kind == "reservation":
        reservation = Reservation.objects.filter(pk=key, patron=patron).first()
        if reservation is None:
            raise wrong
        return {"reservation": reservation}
    if kind == "checkout":
        checkout = Checkout.objects.filter(pk=key, patron=patron).select_related("reservation").first()
        if checkout is None:
            raise wrong
        return {"checkout": checkout, "reservation": checkout.reservation}
    if kind == "resource" and queries.is_own_resource(patron, key):
        return {"resource_id": key}
    raise wrong


@transaction.atomic
def report_problem(*, actor: audit.Actor, patron: Patron, center: Branch, data: Mapping[str, Any]) -> Ticket:
    """A new open ticket at ``center`` with the patron as reporter. Bad input writes nothing."""
    if center.library_id != patron.library_id or not center.is_checkout_center:
        raise NotFound("There is no such checkout center here.")
    if not queries.reports_enabled(center):
        raise ReportsOff(f"{center.name} does not take problem reports in the portal; please ask the staff there.")
    cleaned, errors = rules.clean_report(data.get("summary"), data.get("description"))
    reference: dict[str, Any] = {}
    try:
        reference = _reference(patron, str(data.get("about") or ""))
    except FieldError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    Patron.objects.select_for_update().filter(pk=patron.pk).first()  # one report at a time per patron
    repeated = Ticket.objects.filter(
        reporter=patron, center=center, summary=cleaned["summary"], description=cleaned["description"]
    ).exclude(state=State.CLOSED)
    if (found := repeated.first()) is not None:
        return found
    now = clock.now()
    ticket = Ticket.objects.create(
        library_id=patron.library_id, center=center, reporter=patron, summary=cleaned["summary"],
        description=cleaned["description"], state=State.OPEN, created_at=now, updated_at=now, **reference,
    )  # fmt: skip
    audit.record(
        actor, "ticket.reported", library_id=patron.library_id, patron_id=patron.pk, ticket=ticket.pk,
        center=center.pk,
    )  # fmt: skip
    return ticket


def _comment_text(body: object) -> str:
    text, wrong = rules.clean_text(body, label="comment", limit=COMMENT_MAX)
    if wrong:
        raise FieldError("body", wrong[0])
    return text


@transaction.atomic
def patron_comment(*, actor: audit.Actor, patron: Patron, ticket: Ticket, body: object) -> TicketComment:
    """The reporter adds to their own ticket (also when closed: staff see it and may reopen)."""
    text = _comment_text(body)
    ticket = _lock(ticket)
    if ticket.reporter_id != patron.pk:
        raise NotFound("There is no such ticket among yours.")
    if not queries.reports_enabled(ticket.center_id):
        raise ReportsOff("This checkout center does not take problem reports in the portal at the moment.")
    return _add_comment(actor, ticket, text, patron=patron)


@transaction.atomic
def staff_comment(*, actor: audit.Actor, ticket: Ticket, body: object) -> TicketComment:
    text = _comment_text(body)
    return _add_comment(actor, _lock(ticket), text, patron=None)


def _add_comment(actor: audit.Actor, ticket: Ticket, text: str, *, patron: Patron | None) -> TicketComment:
    now = clock.now()
    same = TicketComment.objects.filter(ticket=ticket, body=text, created_at__gte=now - REPEAT_WINDOW)
    same = same.filter(patron_author=patron) if patron else same.filter(staff_author=actor.account, by_patron=False)
    if (found := same.first()) is not None:
        return found
    made = TicketComment.objects.create(
        ticket=ticket, body=text, created_at=now, patron_author=patron, by_patron=patron is not None,
        staff_author=None if patron else actor.account, staff_label="" if patron else actor.label[:150],
    )  # fmt: skip
    Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
    audit.record(
        actor, "ticket.commented", library_id=ticket.library_id, patron_id=ticket.reporter_id, ticket=ticket.pk,
        comment=made.pk,
    )  # fmt: skip
    return made


def _state(value: object) -> State:
    try:
        return State(str(value))
    except ValueError:
        raise FieldError("state", f"Use one of {', '.join(s.value for s in State)}.") from None


@transaction.atomic
def set_state(*, actor: audit.Actor, ticket: Ticket, state: object, comment: object = "") -> Ticket:
    """Move the ticket (open, in progress, closed; a closed one can only be reopened), with an optional note."""
    target = _state(state)
    note, wrong = rules.clean_text(comment, label="note", limit=COMMENT_MAX, required=False)
    if wrong:
        raise FieldError("comment", wrong[0])
    ticket = _lock(ticket)
    current = State(ticket.state)
    if not rules.may_move(current, target):
        raise TransitionRefused(
            f"A {current.label.lower()} ticket cannot become {target.label.lower()}; reopen it first."
        )
    now = clock.now()
    if target != current:
        ticket.state = target
        ticket.closed_at = now if target == State.CLOSED else None
        ticket.updated_at = now
        ticket.save(update_fields=["state", "closed_at", "updated_at"])
        change = "Reopened" if current == State.CLOSED else f"Status: {target.label}"
        TicketComment.objects.create(
            ticket=ticket, staff_author=actor.account, staff_label=actor.label[:150], change=change, created_at=now
        )
        audit.record(
            actor, "ticket.state_changed", library_id=ticket.library_id, patron_id=ticket.reporter_id,
            ticket=ticket.pk, from_state=current.value, to_state=target.value,
        )  # fmt: skip
    if note:
        _add_comment(actor, ticket, note, patron=None)
    return ticket


@transaction.atomic
def assign(*, actor: audit.Actor, ticket: Ticket, assignee: object) -> Ticket:
    """Give the ticket to a staff member of its library who works tickets, or to nobody (None or "")."""
    ticket = _lock(ticket)
    user: User | None = None
    if assignee not in (None, ""):
        key = str(assignee)
        allowed = {u.pk: u for u in queries.assignable_staff(ticket.library_id)}
        user = allowed.get(int(key)) if key.isdigit() else None
        if user is None:
            raise FieldError("assignee", "Choose a staff member of this library who works tickets, or nobody.")
    if ticket.assignee_id == (user.pk if user else None):
        return ticket
    now = clock.now()
    ticket.assignee = user
    ticket.updated_at = now
    ticket.save(update_fields=["assignee", "updated_at"])
    change = f"Assigned to {user.get_username()}" if user else "Unassigned"
    TicketComment.objects.create(
        ticket=ticket, staff_author=actor.account, staff_label=actor.label[:150], change=change, created_at=now,
        staff_only=True,
    )  # fmt: skip
    audit.record(
        actor, "ticket.assigned", library_id=ticket.library_id, patron_id=ticket.reporter_id, ticket=ticket.pk,
        assignee=user.pk if user else None,
    )  # fmt: skip
    return ticket


@transaction.atomic
def update(*, actor: audit.Actor, ticket: Ticket, data: Mapping[str, Any]) -> Ticket:
    """Change state and/or assignee in one step (the API's PATCH); every field error at once."""
    errors: dict[str, list[str]] = {}
    if "state" in data:
        try:
            _state(data["state"])
        except FieldError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    if "assignee" in data:
        ticket = assign(actor=actor, ticket=ticket, assignee=data["assignee"])
    if "state" in data:
        ticket = set_state(actor=actor, ticket=ticket, state=data["state"], comment=data.get("comment", ""))
    elif data.get("comment"):
        staff_comment(actor=actor, ticket=ticket, body=data["comment"])
    return Ticket.objects.get(pk=ticket.pk)


def record_staff_read(*, actor: audit.Actor, ticket: Ticket) -> None:
    """A staff member (page or API) opened a patron's ticket: their words and name are personal data, so the
    read is audited as a read of the patron, with the purpose "ticket" (nothing when the reporter is gone)."""
    if ticket.reporter_id is None:
        return
    audit.record_read(
        actor, "patron.read", library_id=ticket.library_id, patron_id=ticket.reporter_id,
        patron_label=ticket.reporter.display_name if ticket.reporter else "", purpose="ticket", ticket_id=ticket.pk,
    )  # fmt: skip


def forget_reporter(*, actor: audit.Actor, patron: Patron) -> int:
    """Before a patron's deletion: their tickets stay for the staff's work history, without their words.

    The summary, the description and the patron's comments are replaced by a note; the link to the
    patron and to their reservations and checkouts (history that is anonymised too) is dropped. The
    resource stays: it is the library's, and the problem with it may still need fixing. Open tickets do
    not stop the deletion.
    """
    tickets = Ticket.objects.filter(reporter=patron)
    count = tickets.update(
        reporter=None, summary="Reported by a deleted patron", description=REMOVED, reservation=None, checkout=None
    )
    TicketComment.objects.filter(patron_author=patron).update(patron_author=None, body=REMOVED)
    if count:
        audit.record(actor, "ticket.reporter_forgotten", library_id=patron.library_id, tickets=count)
    return count
