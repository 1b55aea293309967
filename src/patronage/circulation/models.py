"""Checkouts: the resources a patron has taken from the desk, their return, lateness and invoices."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from patronage.fines.models import Fee
from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron
from patronage.reservations.models import Reservation, ReservationLine
from patronage.resources.models import Resource


class Checkout(models.Model):
    """A reservation picked up at the desk. Due at the reservation's end; completed when all is back.

    ``state`` is what the desk lists: ``open`` until the late-marking job sees the end pass (``late``), then
    ``completed`` at the last return. Standing does not read it: it computes lateness from ``due_at``.
    """

    class State(models.TextChoices):
        OPEN = "open", "Open"
        LATE = "late", "Late"
        COMPLETED = "completed", "Completed"

    reservation = models.OneToOneField(Reservation, on_delete=models.PROTECT, related_name="checkout")
    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    center = models.ForeignKey(Branch, on_delete=models.PROTECT, related_name="+")
    # NULL once anonymised (``retention``); open checkouts refuse the patron's deletion, so SET_NULL only
    # ever reaches history.
    patron = models.ForeignKey(Patron, null=True, blank=True, on_delete=models.SET_NULL, related_name="checkouts")
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    checked_out_at = models.DateTimeField()
    checked_out_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    checked_out_by_label = models.CharField(max_length=150, blank=True)
    due_at = models.DateTimeField()
    late_since = models.DateTimeField(null=True, blank=True, help_text="When the late-marking job saw it late.")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["patron", "due_at"], condition=Q(completed_at__isnull=True), name="checkout_patron_open"
            ),
            models.Index(fields=["state", "due_at"], name="checkout_state_due"),
        ]
        ordering = ["checked_out_at", "id"]

    def __str__(self) -> str:
        return f"Checkout {self.pk}"


class CheckoutItem(models.Model):
    """One resource handed out (a kit counts as one: its parts go and come back with it)."""

    checkout = models.ForeignKey(Checkout, on_delete=models.CASCADE, related_name="items")
    line = models.ForeignKey(ReservationLine, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resource = models.ForeignKey(Resource, on_delete=models.PROTECT, related_name="+")
    returned_at = models.DateTimeField(null=True, blank=True)
    returned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    condition_note = models.TextField(max_length=2000, blank=True, help_text="Noted at return.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["checkout", "resource"], name="checkout_item_once")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.resource_id} in checkout {self.checkout_id}"


class OverdueInvoice(models.Model):
    """The one overdue fee raised for a checkout. The unique checkout makes invoicing idempotent.

    ``fee`` is emptied when the checkout's history is anonymised (the fee belongs to the patron's ledger)
    or the fee goes with a deleted patron; the row stays, so the checkout is never invoiced twice.
    """

    checkout = models.OneToOneField(Checkout, on_delete=models.CASCADE, related_name="overdue_invoice")
    fee = models.OneToOneField(Fee, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Overdue invoice {self.pk}"


class JobRun(models.Model):
    """When a scheduled lending job last ran and what it did, for staff to see that it runs."""

    name = models.CharField(max_length=64, unique=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.JSONField(default=dict, blank=True)
    runs = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return self.name
