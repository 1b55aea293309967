"""Tickets: problems patrons report from the portal, worked by staff of the checkout center."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from patronage.circulation.models import Checkout
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron
from patronage.reservations.models import Reservation
from patronage.resources.models import Resource

from .rules import COMMENT_MAX, DESCRIPTION_MAX, SUMMARY_MAX, State

# The ticket states as Django choices (the states themselves are plain Python in rules.py).
TICKET_STATES = [(s.value, s.label) for s in State]


class Ticket(models.Model):
    """One reported problem at one checkout center.

    ``reporter`` is NULL once the patron's account was deleted; the patron's own texts are then replaced
    (``services.forget_reporter``), the staff's comments and the work history stay.
    """

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    center = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    reporter = models.ForeignKey(Patron, null=True, blank=True, on_delete=models.SET_NULL, related_name="tickets")
    # What the problem is about: the patron's own reservation or checkout, or a resource they had; optional.
    resource = models.ForeignKey(Resource, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reservation = models.ForeignKey(Reservation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    checkout = models.ForeignKey(Checkout, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    summary = models.CharField(max_length=SUMMARY_MAX)
    description = models.TextField(max_length=DESCRIPTION_MAX)
    state = models.CharField(max_length=16, choices=TICKET_STATES, default=State.OPEN)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["library", "state", "updated_at"], name="ticket_library_state"),
            models.Index(fields=["reporter", "created_at"], name="ticket_reporter"),
        ]
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Ticket {self.pk}"

    @property
    def state_label(self) -> str:
        return State(self.state).label


class TicketComment(models.Model):
    """A comment by staff or by the reporter, or a change of state or assignee (``change`` set, no body)."""

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="comments")
    staff_author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    staff_label = models.CharField(max_length=150, blank=True, help_text="The staff member's user name.")
    patron_author = models.ForeignKey(
        Patron, null=True, blank=True, on_delete=models.SET_NULL, related_name="ticket_comments"
    )
    by_patron = models.BooleanField(default=False, help_text="Written by the reporter (kept after deletion).")
    body = models.TextField(max_length=COMMENT_MAX, blank=True)
    change = models.CharField(max_length=200, blank=True, help_text='E.g. "Closed" or "Assigned to alice".')
    staff_only = models.BooleanField(default=False, help_text="Not shown to the patron (e.g. who it is assigned to).")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Comment {self.pk} on ticket {self.ticket_id}"
