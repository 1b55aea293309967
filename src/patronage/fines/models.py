from __future__ import annotations

from django.conf import settings
from django.db import models

from patronage.libraries.models import Branch, Library
from patronage.patrons.models import Patron


class Fee(models.Model):
    """Money a patron owes. What is still owed on it is its amount less allocations and waivers."""

    class Kind(models.TextChoices):
        OVERDUE = "overdue", "Overdue"
        LOST = "lost", "Lost resource"
        DAMAGE = "damage", "Damage"
        CARD = "card", "Card replacement"
        SERVICE = "service", "Service"
        OTHER = "other", "Other"

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="fees")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OTHER)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    description = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["patron", "created_at"], name="fee_patron_created")]
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount}"


class Payment(models.Model):
    """Money received. ``idempotency_key`` makes a retried request record one payment."""

    class Method(models.TextChoices):
        CASH = "cash", "Cash"
        CARD = "card", "Card"
        ONLINE = "online", "Online"
        CHEQUE = "cheque", "Cheque"
        OTHER = "other", "Other"

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="payments")
    branch = models.ForeignKey(Branch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    method = models.CharField(max_length=16, choices=Method.choices)
    idempotency_key = models.CharField(max_length=100)
    note = models.CharField(max_length=500, blank=True)
    received_at = models.DateTimeField()
    received_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["library", "idempotency_key"], name="payment_idempotency_key"),
        ]
        indexes = [models.Index(fields=["patron", "received_at"], name="payment_patron_received")]
        ordering = ["received_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_method_display()} {self.amount}"


class PaymentAllocation(models.Model):
    """Which fee a payment paid, and how much of it (oldest fee first)."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="allocations")
    fee = models.ForeignKey(Fee, on_delete=models.CASCADE, related_name="allocations")
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    def __str__(self) -> str:
        return f"{self.amount} of fee {self.fee_id}"


class Waiver(models.Model):
    """Staff forgive all or part of one fee, with a reason."""

    library = models.ForeignKey(Library, on_delete=models.PROTECT, related_name="+")
    patron = models.ForeignKey(Patron, on_delete=models.CASCADE, related_name="waivers")
    fee = models.ForeignKey(Fee, on_delete=models.CASCADE, related_name="waivers")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    reason = models.CharField(max_length=500)
    waived_at = models.DateTimeField()
    waived_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["patron"], name="waiver_patron")]

    def __str__(self) -> str:
        return f"Waiver {self.amount}"
